"""Guarantees measured on exactly what is published.

Random small tables and random treatments (single ones and chains in any order) go through ``release()``
into a folder; every published table is then re-measured here with pandas, independently of the
transforms' code, and compared with ``privacy_report.json``: k of ``users.tsv`` (smallest group of
identical quasi-identifier rows), identical-profile group sizes of ``interactions.tsv``, users without
published interactions (withheld), kept cells and flips of randomized response, rows per user of
minimization, and which ids were replaced.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privrec.errors import ConfigError, PrivacyGuaranteeError, PrivacyLeakWarning
from privrec.release import release

QIS = ["age", "gender", "zip_code"]
INTERACTION_STEPS = {"consent", "minimize", "rr", "profile"}  # steps that change interactions

# ---------------------------------------------------------------------- generated data and treatments


@st.composite
def tables(draw):
    """Users (some without interactions), items, interactions with ratings and distinct timestamps."""
    n_users = draw(st.integers(12, 36))
    n_items = draw(st.integers(4, 12))
    ages = draw(st.lists(st.integers(18, 70), min_size=n_users, max_size=n_users))
    genders = draw(st.lists(st.sampled_from(["F", "M"]), min_size=n_users, max_size=n_users))
    pool = draw(st.lists(st.from_regex(r"[0-9]{5}", fullmatch=True), min_size=1, max_size=6))
    zips = draw(st.lists(st.sampled_from(pool), min_size=n_users, max_size=n_users))
    bands = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n_users, max_size=n_users))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    density = draw(st.sampled_from([0.15, 0.4, 0.8]))
    cells = rng.random((n_users, n_items)) < density
    cells[rng.random(n_users) < 0.1] = False  # a few users with no interaction at all
    cells[0, 0] = True
    user, item = np.nonzero(cells)
    users = pd.DataFrame({"user_id": [f"a{i}" for i in range(n_users)], "age": ages, "gender": genders,
                          "zip_code": zips, "band": bands})
    inter = pd.DataFrame({"user": [f"a{u}" for u in user], "item": [f"m{i}" for i in item],
                          "rating": rng.integers(1, 6, len(user)),
                          "ts": 1_000_000 + rng.permutation(len(user)) * 3600})
    return users, inter


def step_configs(draw, name: str, n_users: int) -> dict:
    if name == "consent":
        return {"_target_": "privrec.privacy.ConsentDrop", "rate": draw(st.sampled_from([0.0, 0.2, 0.5, 0.8]))}
    if name == "kanon":
        return {"_target_": "privrec.privacy.KAnonymity", "k": draw(st.integers(2, max(2, n_users // 3))),
                "suppression": draw(st.sampled_from([0.0, 0.1, 0.3])), "strict": draw(st.booleans())}
    if name == "profile":
        return {"_target_": "privrec.privacy.ProfileKAnonymity", "k": draw(st.integers(2, 4)),
                "dim": draw(st.integers(1, 4)), "share": draw(st.sampled_from([0.3, 0.5, 1.0]))}
    if name == "rr":
        return {"_target_": "privrec.privacy.RandomizedResponse",
                "epsilon": draw(st.sampled_from([0.5, 2.0, 8.0, float("inf")])),
                "variant": draw(st.sampled_from(["optimized", "symmetric"]))}
    if name == "minimize":
        return {"_target_": "privrec.privacy.Minimization", "n": draw(st.integers(1, 5)),
                "strategy": draw(st.sampled_from(["random", "recent", "most_popular"]))}
    assert name == "pseudo"
    return {"_target_": "privrec.privacy.Pseudonymization", "items": draw(st.booleans())}


@st.composite
def treatments(draw, n_users: int):
    order = draw(st.permutations(["consent", "kanon", "profile", "rr", "minimize", "pseudo"]))
    names = order[:draw(st.integers(1, 4))]
    steps = {name: step_configs(draw, name, n_users) for name in names}
    if len(steps) == 1 and draw(st.booleans()):
        return next(iter(steps.values())), steps  # a single treatment, not wrapped in a chain
    return {"_target_": "privrec.privacy.Chain", "steps": steps}, steps


# ---------------------------------------------------------------------- independent re-measurement


def profile_classes(inter: pd.DataFrame) -> pd.Series:
    """Number of users sharing each exact published profile (multiset of item, weight[, timestamp] rows)."""
    cols = [c for c in ("item_id", "weight", "timestamp") if c in inter]
    rows = inter[cols].astype(str).agg("\x1f".join, axis=1)
    profiles = rows.groupby(inter["user_id"]).agg(lambda r: "\x1e".join(sorted(r)))
    return profiles.value_counts()


def metric(report: dict, prefix: str, name: str) -> float:
    return report["metrics"][f"{prefix}{name}"]


def check_release(out: Path, users: pd.DataFrame, inter: pd.DataFrame, steps: dict, chained: bool,
                  keep_ids: bool) -> None:
    pub_inter = pd.read_csv(out / "interactions.tsv", sep="\t", dtype={"user_id": str, "item_id": str})
    pub_users = pd.read_csv(out / "users.tsv", sep="\t", dtype=str)
    report = json.loads((out / "privacy_report.json").read_text())
    n_users, n_items = len(users), inter["item"].nunique()
    original_users, original_items = set(users["user_id"]), set(inter["item"])

    # what was published, and under which ids
    assert report["released_users"] == len(pub_users) and report["released_interactions"] == len(pub_inter)
    assert report["users_with_interactions"] == pub_inter["user_id"].nunique()
    assert pub_users["user_id"].is_unique
    items_pseudonymized = "pseudo" in steps and steps["pseudo"]["items"]
    assert report["ids_replaced"] == {"users": not keep_ids, "items": not keep_ids and items_pseudonymized}
    if not keep_ids or "pseudo" in steps:
        assert not (set(pub_users["user_id"]) | set(pub_inter["user_id"])) & original_users
    else:
        assert set(pub_users["user_id"]) | set(pub_inter["user_id"]) <= original_users
    if items_pseudonymized:
        assert not set(pub_inter["item_id"]) & original_items
    else:
        assert set(pub_inter["item_id"]) <= original_items
    if "kanon" not in steps:  # every attribute row is published, as it was
        key = ["age", "gender", "zip_code", "band"]
        assert sorted(map(tuple, pub_users[key].astype(str).to_numpy())) == sorted(
            map(tuple, users[key].astype(str).to_numpy()))

    had_data = inter["user"].nunique()
    no_rows = had_data - pub_inter["user_id"].nunique()  # users with data and no published interaction
    for name, params in steps.items():
        p = f"{name}/" if chained else ""
        if name == "kanon":
            qi = pub_users[QIS].dropna(how="all")
            sizes = qi.groupby(QIS, dropna=False).size()
            assert len(sizes) and sizes.min() >= params["k"]
            assert metric(report, p, "k_achieved") == sizes.min()
            assert metric(report, p, "n_classes") == len(sizes)
            assert metric(report, p, "users_suppressed") == n_users - len(pub_users)
            assert n_users - len(pub_users) <= np.floor(params["suppression"] * n_users + 1e-9)
        elif name == "profile":
            classes = profile_classes(pub_inter)
            if len(classes):
                assert classes.min() >= params["k"]
                assert metric(report, p, "k_achieved") == classes.min()
            else:
                assert metric(report, p, "k_achieved") == n_users
            assert metric(report, p, "n_groups") == len(classes)
        elif name == "consent":
            withheld = metric(report, p, "users_withheld")
            assert n_users - pub_inter["user_id"].nunique() >= withheld  # opted-out users stay out, in any order
            order = list(steps)
            if not set(order[:order.index(name)]) & INTERACTION_STEPS:  # its input: the original interactions
                assert withheld == round(params["rate"] * had_data)
            if not set(steps) & {"profile", "rr"}:  # the only steps that can empty or fill a user
                assert withheld == no_rows
            if set(steps) <= {"consent", "kanon", "pseudo"}:
                assert metric(report, p, "interactions_withheld") == len(inter) - len(pub_inter)
        elif name == "minimize":
            per_user = pub_inter.groupby("user_id").size()
            assert metric(report, p, "max_interactions_per_user") == (per_user.max() if len(per_user) else 0)
            assert per_user.max() <= params["n"] if len(per_user) else True
        elif name == "rr":
            assert metric(report, p, "output_interactions") == len(pub_inter)
            order = list(steps)
            before = set(order[:order.index(name)])
            if keep_ids and "pseudo" not in steps and not before & INTERACTION_STEPS:
                # its input was the original table: kept 1s and flipped 0s, cell by cell
                published = set(zip(pub_inter["user_id"], pub_inter["item_id"], strict=True))
                cells = set(zip(inter["user"], inter["item"], strict=True))
                kept, flips = len(published & cells), len(published - cells)
                empty = n_users * n_items - len(cells)
                assert metric(report, p, "actual_kept_1") == kept
                assert metric(report, p, "actual_flips_0_to_1") == flips
                assert metric(report, p, "flip_rate") == pytest.approx(flips / max(1, empty))
                assert metric(report, p, "kept_1_rate") == pytest.approx(kept / max(1, len(cells)))
                if params["epsilon"] == float("inf"):  # the identity, but for what a later step removed
                    later = set(order[order.index(name) + 1:])
                    assert flips == 0 and (kept == len(cells) or bool(later & INTERACTION_STEPS))
        elif name == "pseudo":
            assert metric(report, p, "ids_reused") == 0


def _write_tables(folder: Path, users: pd.DataFrame, inter: pd.DataFrame) -> dict:
    inter.to_csv(folder / "inter.tsv", sep="\t", header=False, index=False)
    users.to_csv(folder / "users.csv", index=False)
    return {"_target_": "privrec.data.loaders.Delimited", "path": "inter.tsv", "sep": "\t", "header": False,
            "user_col": 0, "item_col": 1, "rating_col": 2, "timestamp_col": 3, "user_attributes_path": "users.csv",
            "quasi_identifiers": QIS, "sensitive": ["band"], "numeric": ["age"],
            "hierarchies": {"zip_code": "prefix"}}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), table=tables(), seed=st.integers(0, 1000), keep_ids=st.booleans())
def test_every_report_holds_on_the_published_tables(data, table, seed, keep_ids):
    users, inter = table
    privacy, steps = data.draw(treatments(len(users)))
    folder = Path(tempfile.mkdtemp(prefix="privrec-release-"))
    try:
        cfg = {"dataset": _write_tables(folder, users, inter), "preprocess": None, "data_dir": str(folder),
               "seed": seed, "privacy": privacy}
        out = folder / "out"
        error = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PrivacyLeakWarning)
                release(cfg, out, keep_ids=keep_ids)
        except (PrivacyGuaranteeError, ConfigError) as raised:
            error = raised
        if error is None:
            check_release(out, users, inter, steps, privacy["_target_"].endswith("Chain"), keep_ids)
            return
        # Refused, one line, nothing written: a guarantee a later step broke, a k larger than the population, or
        # minimization 'recent' after randomized response (no timestamps left).
        message = str(error)
        assert "\n" not in message and not out.exists()
        if isinstance(error, PrivacyGuaranteeError):
            assert message.startswith("chain.steps.") or "must be <= the number of users" in message, message
        else:
            assert "needs interaction timestamps" in message, message
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_later_step_that_breaks_a_guarantee_is_refused(tmp_path):
    """Profile k-anonymity then a consent drop: the published profiles are no longer k-anonymous."""
    users, inter = _fixed_table()
    cfg = {"dataset": _write_tables(tmp_path, users, inter), "preprocess": None, "data_dir": str(tmp_path),
           "seed": 0, "privacy": {"_target_": "privrec.privacy.Chain", "steps": {
               "profile": {"_target_": "privrec.privacy.ProfileKAnonymity", "k": 4, "dim": 2},
               "consent": {"_target_": "privrec.privacy.ConsentDrop", "rate": 0.5}}}}
    with pytest.raises(PrivacyGuaranteeError, match=r"^chain\.steps\.profile: profile_k_anonymity output must "
                       r"have k_achieved >= 4; got \d on the chain's output, after the later steps \(consent\)"):
        release(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    cfg["privacy"]["steps"] = dict(reversed(cfg["privacy"]["steps"].items()))  # consent first: fine
    release(cfg, tmp_path / "out")
    check_release(tmp_path / "out", users, inter, cfg["privacy"]["steps"], True, False)


def _fixed_table() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)
    n_users, n_items = 40, 10
    users = pd.DataFrame({"user_id": [f"a{i}" for i in range(n_users)], "age": rng.integers(18, 70, n_users),
                          "gender": rng.choice(["F", "M"], n_users),
                          "zip_code": rng.choice(["02139", "02138", "94043"], n_users),
                          "band": rng.choice(["a", "b"], n_users)})
    user, item = np.nonzero(rng.random((n_users, n_items)) < 0.5)
    inter = pd.DataFrame({"user": [f"a{u}" for u in user], "item": [f"m{i}" for i in item],
                          "rating": rng.integers(1, 6, len(user)),
                          "ts": 1_000_000 + rng.permutation(len(user)) * 3600})
    return users, inter
