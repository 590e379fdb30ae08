// `nabla bench` progress on stderr, so that stdout holds only the table.

/** Progress on stderr: a bar redrawn with \r on a terminal, plain lines otherwise. */
export class Progress {
  private done = 0;
  private readonly tty = Boolean(process.stderr.isTTY);
  private label = '';

  constructor(private readonly total: number) {}

  /** One run finished (redraws the bar on a terminal). */
  tick(): void {
    this.done++;
    if (this.tty) this.draw();
  }

  /** Starts a step: its name is shown on the bar. */
  step(label: string): void {
    this.label = label;
    if (this.tty) this.draw();
  }

  /** A finished step's result, or a note: its own line. */
  line(text: string): void {
    if (this.tty) process.stderr.write(`\r\x1b[K${text}\n`);
    else process.stderr.write(`${text}\n`);
    if (this.tty && this.done < this.total) this.draw();
  }

  finish(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
  }

  private draw(): void {
    const width = 24;
    const filled = Math.round((width * Math.min(this.done, this.total)) / Math.max(this.total, 1));
    process.stderr.write(
      `\r\x1b[K[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${this.done}/${this.total} ${this.label}`,
    );
  }
}
