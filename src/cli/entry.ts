/** Entry point: loads every command (the cluster and operator ones register themselves). */
import { main } from "./main.ts";

export async function run(argv: string[]): Promise<number> {
  return main(argv);
}
