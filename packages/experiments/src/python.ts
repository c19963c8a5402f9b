/**
 * The python interpreter that runs the PyTorch twins (parity, the bench anchor): `DROPCLASS_PYTHON`,
 * else Debian's `/usr/bin/python3` (with `python3-torch`).
 */
export const DEFAULT_PYTHON = process.env.DROPCLASS_PYTHON ?? '/usr/bin/python3';

/** How to get the PyTorch side running. */
export const TORCH_HINT = "install Debian's python3-torch and python3-torchvision (apt-get install python3-torch python3-torchvision) and run the anchor with --python /usr/bin/python3, or pass --no-torch";
