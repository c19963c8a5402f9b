/** Files of a run directory. */
export const CONFIG_JSON = 'config.json';
export const METRICS_JSONL = 'metrics.jsonl';
export const EVAL_JSON = 'eval.json';
