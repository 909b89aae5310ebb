from pathlib import Path

import hydra

from plugin_app.tasks import task

main = hydra.main(version_base="1.3", config_path=str(Path(__file__).parent / "conf"), config_name="config")(task)

if __name__ == "__main__":
    main()
