"""The PyTorch twins of the project, written once: the networks (`networks`), the DropClass head and
objective (`objective`) and the training recipe (`recipe`). Used by the reference generator
(tools/reference/generate.py), the parity twin (parity_twin.py) and the bench anchor (torch_bench.py).

Needs PyTorch and torchvision (Debian: apt-get install python3-torch python3-torchvision, run with
/usr/bin/python3)."""
