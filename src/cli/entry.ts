/** Entry point: wires the commands that need I/O beyond files into the CLI. */
import { cluster } from "./cluster.ts";
import { main, registerCommand } from "./main.ts";
import { runOperator } from "./run.ts";

registerCommand("cluster", cluster);
registerCommand("run", runOperator);

export async function run(argv: string[]): Promise<number> {
  return main(argv);
}
