/** Bad input on disk: says which file, what was found, what was expected and what to do. */
export class DatasetError extends Error {
  constructor(
    readonly file: string,
    readonly found: string,
    readonly expected: string,
    readonly fix: string,
  ) {
    super(`${file}: ${found}; expected ${expected}. ${fix}`);
    this.name = 'DatasetError';
  }
}
