"""Train MiniMind from a checkout: `python train.py [group=option ...] [key=value ...]`.

The same as `minimind-train` / `python -m minimind.train` (see src/minimind/train.py for examples);
the configuration ships inside the package (src/minimind/conf/, also reachable as ./conf).
"""

from minimind.train import main

if __name__ == "__main__":
    main()
