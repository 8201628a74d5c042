/** The `msd` command line. */
import { parseArgs } from "node:util";
import { EXIT, runCrd, runPlan, runRender, type CommandResult } from "./commands.ts";

const USAGE = `usage: msd <command> [options]

commands:
  plan -f FILE [-o json|table]   size a MistralSmallDeployment (FILE or - for stdin)
  render -f FILE                 print every object the operator would create
  crd                            print the CustomResourceDefinition
  cluster up [--karpenter] [--dir D] | down | status [--dir D]
                                 a local control plane with fake A100 nodes (default dir .tmp/cluster);
                                 --karpenter: no GPU node, real Karpenter launches them (KWOK)
  run [--kubeconfig K] [--context C] [--namespace N[,N...]] [--port P]
                                 run the operator (kubeconfig as kubectl: --kubeconfig,
                                 else $KUBECONFIG, else in-cluster, else ~/.kube/config)

exit codes: 0 ok/feasible, 1 error, 2 invalid input, 3 infeasible plan
`;

type Handler = (argv: string[]) => Promise<CommandResult> | CommandResult;

function fileArg(argv: string[], extra: Record<string, { type: "string"; short?: string }> = {}) {
  const { values } = parseArgs({
    args: argv,
    options: { file: { type: "string", short: "f" }, ...extra },
    strict: true,
  });
  if (values.file === undefined) throw new UsageError("-f FILE is required (use - for stdin)");
  return values as { file: string } & Record<string, string | undefined>;
}

export class UsageError extends Error {
  override name = "UsageError";
}

export const COMMANDS: Record<string, Handler> = {
  plan: (argv) => {
    const v = fileArg(argv, { output: { type: "string", short: "o" } });
    const output = v.output ?? "table";
    if (output !== "json" && output !== "table") {
      throw new UsageError(`-o must be json or table, got ${output}`);
    }
    return runPlan(v.file, output);
  },
  render: (argv) => runRender(fileArg(argv).file),
  crd: () => runCrd(),
};

export function registerCommand(name: string, handler: Handler): void {
  COMMANDS[name] = handler;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(USAGE);
    return name === undefined ? EXIT.invalid : EXIT.ok;
  }
  const handler = COMMANDS[name];
  if (handler === undefined) {
    process.stderr.write(`unknown command ${name}\n${USAGE}`);
    return EXIT.invalid;
  }
  try {
    const result = await handler(rest);
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    return result.code;
  } catch (err) {
    if (
      err instanceof UsageError ||
      (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
    ) {
      process.stderr.write(`${(err as Error).message}\n${USAGE}`);
      return EXIT.invalid;
    }
    process.stderr.write(`error: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.error;
  }
}
