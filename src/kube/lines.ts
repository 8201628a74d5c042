/**
 * Newline-delimited text from a byte stream, correct for any chunking: a watch stream's
 * chunks end anywhere, inside a multi-byte UTF-8 character or inside an event, so bytes
 * go through one streaming decoder (which holds back an incomplete character) and a
 * splitter that holds back an incomplete line.
 */
import { StringDecoder } from "node:string_decoder";

export class LineDecoder {
  private readonly decoder = new StringDecoder("utf8");
  private partial = "";

  /** The complete lines this chunk finishes, without their newline (a trailing "\r" too). */
  push(chunk: Uint8Array): string[] {
    return this.split(this.decoder.write(chunk as Buffer));
  }

  /** At end of stream: the last line if it had no newline (a truncated character becomes U+FFFD). */
  end(): string[] {
    const rest = this.partial + this.decoder.end();
    this.partial = "";
    return rest === "" ? [] : [stripCr(rest)];
  }

  private split(text: string): string[] {
    const lines: string[] = [];
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf("\n", start)) >= 0) {
      lines.push(stripCr(this.partial + text.slice(start, nl)));
      this.partial = "";
      start = nl + 1;
    }
    this.partial += text.slice(start);
    return lines;
  }
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
