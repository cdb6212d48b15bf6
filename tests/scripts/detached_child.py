"""A plain script that starts a child in its own session (outside the script's process group),
which keeps the script's stdout open long after the script exits, as a daemonised logger or
server would. The script itself reports a healthy, falling loss and exits 0."""

import subprocess
import sys

child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(120)"],
    start_new_session=True,  # not stopped with the script's group
)
print(f"child {child.pid}", flush=True)
for step in range(10):
    print(f'{{"loss": {1.0 / (step + 1):.4f}}}', flush=True)
