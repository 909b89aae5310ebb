"""The public datasets privrec knows: where each comes from, how to verify it, its licence and citation.

One :class:`CatalogEntry` per ``privrec data fetch NAME`` (``NAME`` is also the folder ``<data_dir>/<NAME>/`` and
the ``dataset=`` option). Checksums are only those someone published; none is invented here:

- **MD5**: the ``.md5`` file GroupLens publishes beside every MovieLens archive (``ml-1m.zip.md5`` ...), and the
  MD5 that Zenodo lists for the Last.fm 1K archive (record 6090214).
- **SHA-256 and size**: where known, as recorded by TensorFlow Datasets in its ``url_checksums/movielens.txt``
  (GroupLens itself publishes no SHA-256). For ML-10M, ML-32M and Last.fm 1K only the MD5 (and for ML-32M the
  size) is known; Book-Crossing and Amazon Reviews'23 publish no checksum at all, so their downloads cannot be
  verified: ``privrec data fetch`` says so and prints the SHA-256 of what it got, for you to record.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOG", "Archive", "CatalogEntry", "catalog_entry"]

_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
_GROUPLENS_LICENCE = (
    "GroupLens licence: research use only, no redistribution without permission; "
    "cite Harper & Konstan 2015 (ACM TiiS 5(4):19)"
)
_GROUPLENS_CITATION = (
    "F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context. "
    "ACM Transactions on Interactive Intelligent Systems 5(4): 19:1-19:19. https://doi.org/10.1145/2827872"
)
_AMAZON_2023 = "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_2023/"
_AMAZON_2023_HF = "https://huggingface.co/datasets/McAuley-Lab/Amazon-Reviews-2023/resolve/main/"
_TFDS = "SHA-256 and size as recorded by TensorFlow Datasets (url_checksums/movielens.txt)"


@dataclass(frozen=True)
class Archive:
    """One downloadable file and the members privrec keeps from it.

    ``kind``: ``"zip"``, ``"tar.gz"`` or ``"file"`` (kept as downloaded, e.g. a ``.jsonl.gz``).
    ``members``: ``(path inside the archive, file name in <data_dir>/<name>/)``; for ``"file"`` the first path is
    ignored. ``sha256``/``md5``/``size``: what was published (``None``: unknown, never guessed).
    """

    urls: tuple[str, ...]
    filename: str
    kind: str
    members: tuple[tuple[str, str], ...]
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    checksum_source: str = ""


@dataclass(frozen=True)
class CatalogEntry:
    """A public dataset: its archive, the ``dataset=`` option that loads it, size, attributes, licence, citation."""

    name: str
    title: str
    archive: Archive
    homepage: str
    size: str
    attributes: str
    licence: str
    citation: str


def _movielens(
    name: str,
    title: str,
    folder: str,
    files: tuple[str, ...],
    *,
    size: str,
    attributes: str = "none",
    sha256: str | None = None,
    md5: str | None = None,
    nbytes: int | None = None,
) -> CatalogEntry:
    sources = [f"MD5 from GroupLens' {name}.zip.md5"] if md5 else []
    if sha256:
        sources.append(_TFDS)
    return CatalogEntry(
        name=name,
        title=title,
        archive=Archive(
            urls=(f"{_GROUPLENS}{name}.zip",),
            filename=f"{name}.zip",
            kind="zip",
            members=tuple((f"{folder}/{f}", f) for f in files),
            sha256=sha256,
            md5=md5,
            size=nbytes,
            checksum_source="; ".join(sources),
        ),
        homepage=f"https://grouplens.org/datasets/movielens/{name.removeprefix('ml-')}/"
        if name != "ml-latest-small"
        else "https://grouplens.org/datasets/movielens/latest/",
        size=size,
        attributes=attributes,
        licence=_GROUPLENS_LICENCE,
        citation=_GROUPLENS_CITATION,
    )


#: Every dataset ``privrec data fetch`` knows, by name.
CATALOG: dict[str, CatalogEntry] = {
    e.name: e
    for e in (
        _movielens(
            "ml-100k",
            "MovieLens 100K",
            "ml-100k",
            ("u.data", "u.user"),
            size="943 users, 1,682 movies, 100,000 ratings",
            attributes="age, gender, occupation, zip code",
            sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            md5="0e33842e24a9c977be4e0107933c0723",
            nbytes=4_924_029,
        ),
        _movielens(
            "ml-1m",
            "MovieLens 1M",
            "ml-1m",
            ("ratings.dat", "users.dat"),
            size="6,040 users, 3,706 rated movies, 1,000,209 ratings",
            attributes="age band, gender, occupation, zip code",
            sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            md5="c4d9eecfca2ab87c1945afe126590906",
            nbytes=5_917_549,
        ),
        _movielens(
            "ml-10m",
            "MovieLens 10M",
            "ml-10M100K",
            ("ratings.dat",),
            size="71,567 users, 10,681 movies, 10,000,054 ratings (half stars)",
            md5="ce571fd55effeba0271552578f2648bd",
        ),
        _movielens(
            "ml-20m",
            "MovieLens 20M",
            "ml-20m",
            ("ratings.csv",),
            size="138,493 users, 27,278 movies, 20,000,263 ratings",
            sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            md5="cd245b17a1ae2cc31bb14903e1204af3",
            nbytes=198_702_078,
        ),
        _movielens(
            "ml-25m",
            "MovieLens 25M",
            "ml-25m",
            ("ratings.csv",),
            size="162,541 users, 62,423 movies, 25,000,095 ratings",
            sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            md5="6b51fb2759a8657d3bfcbfc42b592ada",
            nbytes=261_978_986,
        ),
        _movielens(
            "ml-32m",
            "MovieLens 32M",
            "ml-32m",
            ("ratings.csv",),
            size="200,948 users, 87,585 movies, 32,000,204 ratings",
            md5="d472be332d4daa821edc399621853b57",
        ),
        _movielens(
            "ml-latest-small",
            "MovieLens latest small (2018)",
            "ml-latest-small",
            ("ratings.csv",),
            size="610 users, 9,742 movies, 100,836 ratings",
            sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
            nbytes=978_202,
        ),
        CatalogEntry(
            name="lastfm-1k",
            title="Last.fm 1K (listening histories)",
            archive=Archive(
                urls=(
                    "https://zenodo.org/records/6090214/files/lastfm-dataset-1K.tar.gz?download=1",
                    "http://mtg.upf.edu/static/datasets/last.fm/lastfm-dataset-1K.tar.gz",
                ),
                filename="lastfm-dataset-1K.tar.gz",
                kind="tar.gz",
                members=(
                    (
                        "lastfm-dataset-1K/userid-timestamp-artid-artname-traid-traname.tsv",
                        "userid-timestamp-artid-artname-traid-traname.tsv",
                    ),
                    ("lastfm-dataset-1K/userid-profile.tsv", "userid-profile.tsv"),
                ),
                md5="a79a6808f54f73354789a9fb02cb1e41",
                checksum_source="MD5 as listed on Zenodo record 6090214 (no SHA-256 published)",
            ),
            homepage="http://ocelma.net/MusicRecommendationDataset/lastfm-1K.html",
            size="992 users, ~19.15M plays (aggregated to user x artist play counts)",
            attributes="gender, age (and age band), country",
            licence="Last.fm 1K: non-commercial use only; cite Celma 2010",
            citation="Oscar Celma. 2010. Music Recommendation and Discovery in the Long Tail. Springer.",
        ),
        CatalogEntry(
            name="book-crossing",
            title="Book-Crossing",
            archive=Archive(
                urls=("http://www2.informatik.uni-freiburg.de/~cziegler/BX/BX-CSV-Dump.zip",),
                filename="BX-CSV-Dump.zip",
                kind="zip",
                members=(("BX-Book-Ratings.csv", "BX-Book-Ratings.csv"), ("BX-Users.csv", "BX-Users.csv")),
                checksum_source="none published: the download cannot be verified",
            ),
            homepage="http://www2.informatik.uni-freiburg.de/~cziegler/BX/",
            size="278,858 users, 271,379 books, 1,149,780 ratings (716,109 implicit)",
            attributes="age (and age band), country",
            licence="Book-Crossing: free for research use; cite Ziegler et al. 2005",
            citation=(
                "Cai-Nicolas Ziegler, Sean M. McNee, Joseph A. Konstan and Georg Lausen. 2005. Improving "
                "Recommendation Lists Through Topic Diversification. WWW 2005."
            ),
        ),
        CatalogEntry(
            name="amazon-all-beauty",
            title="Amazon Reviews'23, All_Beauty",
            archive=Archive(
                urls=(
                    _AMAZON_2023 + "raw/review_categories/All_Beauty.jsonl.gz",
                    _AMAZON_2023_HF + "raw/review_categories/All_Beauty.jsonl.gz",
                ),
                filename="All_Beauty.jsonl.gz",
                kind="file",
                members=(("All_Beauty.jsonl.gz", "All_Beauty.jsonl.gz"),),
                checksum_source="none published: the download cannot be verified",
            ),
            homepage="https://amazon-reviews-2023.github.io/",
            size="~632K users, ~112.6K items, ~701.5K ratings",
            attributes="none",
            licence="Amazon Reviews'23 (McAuley Lab): no licence file published, research use; cite Hou et al. 2024",
            citation=(
                "Yupeng Hou, Jiacheng Li, Zhankui He, An Yan, Xiusi Chen and Julian McAuley. 2024. Bridging "
                "Language and Items for Retrieval and Recommendation. arXiv:2403.03952."
            ),
        ),
    )
}


def catalog_entry(name: str) -> CatalogEntry:
    """The entry named ``name``; :class:`~privrec.errors.ConfigError` listing the known names otherwise."""
    from privrec.errors import ConfigError

    if name not in CATALOG:
        raise ConfigError(f"data fetch NAME must be one of {', '.join(CATALOG)}; got {name!r}.")
    return CATALOG[name]
