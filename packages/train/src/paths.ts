/** Files of a run directory. */
export const CONFIG_JSON = 'config.json';
export const METRICS_JSONL = 'metrics.jsonl';
export const EVAL_JSON = 'eval.json';
/** SHA-256 of the run's resolved config.json: a run is resumed or reused only under the same hash. */
export const CONFIG_HASH = 'config-hash';
