import cliProgress from 'cli-progress';

export interface ProgressFields {
  [key: string]: string | number;
}

/**
 * Progress of a long job: a live bar (step, ETA, fields) on a terminal, plain log lines otherwise,
 * so CI logs and pipes stay readable.
 */
export class Progress {
  private bar?: cliProgress.SingleBar;
  private lastLine = 0;
  private value = 0;
  private fields: ProgressFields = {};

  constructor(
    private readonly title: string,
    private readonly total: number,
    private readonly fieldsFormat: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly lineEverySeconds = 5,
  ) {}

  start(value: number, fields: ProgressFields): void {
    if (this.stream.isTTY) {
      this.bar = new cliProgress.SingleBar(
        { format: `${this.title} [{bar}] {value}/{total} | ETA {eta_formatted} | ${this.fieldsFormat}`, stream: this.stream, hideCursor: true, etaBuffer: 20 },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(this.total, value, fields);
    }
  }

  update(value: number, fields: ProgressFields): void {
    this.value = value;
    this.fields = fields;
    if (this.bar) {
      this.bar.update(value, fields);
      return;
    }
    const now = Date.now() / 1000;
    if (now - this.lastLine >= this.lineEverySeconds || value === this.total) {
      this.lastLine = now;
      const text = this.fieldsFormat.replace(/\{(\w+)\}/g, (_, k: string) => String(fields[k] ?? ''));
      this.stream.write(`${this.title} ${value}/${this.total} | ${text}\n`);
    }
  }

  /** Prints a line without breaking the bar. */
  log(line: string): void {
    if (this.bar) this.bar.stop();
    this.stream.write(`${line}\n`);
    if (this.bar) this.bar.start(this.total, this.value, this.fields);
  }

  stop(): void {
    this.bar?.stop();
  }
}
