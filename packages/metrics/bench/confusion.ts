import { ConfusionMatrix } from '../src/confusion.js';

/** Times ConfusionMatrix.update on a 1024x2048 map against a plain pass over the same arrays. */
const n = 1024 * 2048;
const classes = 19;
const label = new Uint8Array(n);
const prediction = new Uint8Array(n);
let state = 1;
for (let i = 0; i < n; i++) {
  state = (state * 1103515245 + 12345) >>> 0;
  label[i] = state % 20 === 19 ? 255 : state % classes;
  prediction[i] = (state >>> 8) % classes;
}
const median = (f: () => void, repeats = 15) => {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    f();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[Math.floor(repeats / 2)];
};
let sink = 0;
const floor = median(() => {
  let s = 0;
  for (let i = 0; i < n; i++) s += label[i] + prediction[i];
  sink += s;
});
const matrix = new ConfusionMatrix(classes);
const update = median(() => matrix.update(prediction, label));
console.log(`1024x2048 map, ${classes} classes (median of 15)`);
console.log(`plain pass over both arrays: ${floor.toFixed(2)} ms`);
console.log(`ConfusionMatrix.update:      ${update.toFixed(2)} ms (${(update / floor).toFixed(2)}x the floor)`);
if (sink < 0) console.log(sink);
