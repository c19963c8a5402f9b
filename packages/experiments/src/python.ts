/**
 * The python interpreter that runs the PyTorch twins (parity, the bench anchor): `DROPCLASS_PYTHON`,
 * else Debian's `/usr/bin/python3` (with `python3-torch`).
 */
export const DEFAULT_PYTHON = process.env.DROPCLASS_PYTHON ?? '/usr/bin/python3';
