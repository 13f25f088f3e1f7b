import gc
import sys

from incidentops.cli import main

code = main()
# The process ends here, and the interpreter's last collections would walk every object the libraries left (about
# 0.2 s after PyGithub and httpx): freezing them skips that. Files, sockets and the work tree are closed or removed
# by then (atexit still runs).
gc.freeze()
sys.exit(code)
