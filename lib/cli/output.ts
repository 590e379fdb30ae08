// The output files of one CLI run, written all or nothing: a failed run (a bad input found late,
// a disk that fills up, an exception midway, Ctrl-C) leaves no output behind, and never a
// truncated .npy that NumPy cannot load.
//
//   plan(flag, file)   before any work: the directory exists, the file is no input and no
//                      other output, so mistakes cost nothing
//   stage(file, write) write(temp) fills a temporary file beside the target
//   commit()           when every output is staged: rename each into place (atomic per file;
//                      a rename fails only with the file system itself, and then the outputs
//                      renamed before it stay, the rest are removed)
//   discard()          on failure: remove the temporary files
//
// `writeAllOrNothing` runs a command's work between these steps.
import * as fs from 'fs';
import * as path from 'path';

interface Planned {
  flag: string;
  /** The path as given, for messages. */
  file: string;
  /** Where the bytes go: the real path (links followed), so a link to a file stays a link. */
  target: string;
  /** The staged temporary file, once written. */
  temp?: string;
}

/** A file's identity: the same file under two names (links, hard links) has the same one. */
function identity(file: string): string | undefined {
  try {
    const s = fs.statSync(file);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

function planError(flag: string, expected: string, received: string): Error {
  return new Error(`Expected ${expected} for --${flag} but received ${received}`);
}

let tempSerial = 0;

export class OutputFiles {
  private readonly outputs: Planned[] = [];
  private readonly inputs: { flag: string; file: string; id: string }[] = [];

  /** `inputs`: the input files by flag (undefined ones are skipped; missing files fail when read). */
  constructor(inputs: Record<string, string | undefined>) {
    for (const [flag, file] of Object.entries(inputs)) {
      const id = file === undefined ? undefined : identity(file);
      if (file !== undefined && id !== undefined) this.inputs.push({ flag, file, id });
    }
  }

  /** Checks an output path before any work; throws a one-line Error naming the flag. */
  plan(flag: string, file: string): void {
    const given = `'${file}'`;
    const dir = path.dirname(path.resolve(file));
    let realDir: string;
    try {
      realDir = fs.realpathSync(dir);
    } catch {
      throw planError(flag, 'a file in an existing directory', `${given} (no directory ${dir})`);
    }
    if (!fs.statSync(realDir).isDirectory())
      throw planError(flag, 'a file in an existing directory', `${given} (${dir} is not a directory)`);
    try {
      fs.accessSync(realDir, fs.constants.W_OK);
    } catch {
      throw planError(flag, 'a file in a writable directory', `${given} (${dir} is not writable)`);
    }
    let target = path.join(realDir, path.basename(file));
    const id = identity(target);
    if (id !== undefined) {
      target = fs.realpathSync(target); // follow a link to the file it names
      if (fs.statSync(target).isDirectory()) throw planError(flag, 'a file path', `${given} (a directory)`);
      const input = this.inputs.find((i) => i.id === id);
      if (input)
        throw planError(
          flag,
          'an output file that is not an input',
          `${given} (the --${input.flag} file ${input.file})`,
        );
    }
    const twin = this.outputs.find((o) => o.target === target);
    if (twin) throw planError(flag, `a file other than the --${twin.flag} output`, given);
    this.outputs.push({ flag, file, target });
  }

  /**
   * Writes a planned output: `write(temp)` creates the bytes at a temporary path in the target's
   * directory (any writer that takes a path: saveNpy, writePicture).
   */
  stage(file: string, write: (temp: string) => void): void {
    const output = this.outputs.find((o) => o.file === file);
    if (!output) throw new Error(`internal: output ${file} was not planned`);
    const temp = path.join(
      path.dirname(output.target),
      `.${path.basename(output.target)}.${process.pid}-${tempSerial++}.tmp`,
    );
    fs.closeSync(fs.openSync(temp, 'wx')); // reserve the name: never reuse a file that exists
    output.temp = temp;
    write(temp);
    // flush before the rename, so a crash after it cannot leave an empty or partial file in place
    const fd = fs.openSync(temp, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Moves every staged output into place. Each rename is atomic; all outputs must be staged. */
  commit(): void {
    const unstaged = this.outputs.find((o) => o.temp === undefined);
    if (unstaged) throw new Error(`internal: output ${unstaged.file} (--${unstaged.flag}) was planned but not written`);
    for (const o of this.outputs) {
      fs.renameSync(o.temp!, o.target);
      o.temp = undefined;
    }
  }

  /** Removes every staged temporary file (what a failed run wrote). */
  discard(): void {
    for (const o of this.outputs) {
      if (o.temp !== undefined) fs.rmSync(o.temp, { force: true });
      o.temp = undefined;
    }
  }
}

/**
 * Runs `work` (which stages every planned output) and commits the outputs when it succeeds; on an
 * error, or SIGINT / SIGTERM while it runs, removes what it staged. Returns what `work` returns.
 */
export async function writeAllOrNothing<T>(outputs: OutputFiles, work: () => Promise<T> | T): Promise<T> {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const onSignal = (signal: NodeJS.Signals) => {
    outputs.discard();
    for (const s of signals) process.removeListener(s, onSignal);
    process.kill(process.pid, signal); // the default action again: exit as killed by the signal
  };
  for (const s of signals) process.on(s, onSignal);
  try {
    const result = await work();
    outputs.commit();
    return result;
  } catch (err) {
    outputs.discard();
    throw err;
  } finally {
    for (const s of signals) process.removeListener(s, onSignal);
  }
}
