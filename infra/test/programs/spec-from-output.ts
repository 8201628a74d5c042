/**
 * A program whose spec comes from an Output and is invalid: run by components.test.ts in its
 * own process, because Pulumi reports the failed resource as an unhandled rejection (the
 * way `pulumi up` fails) and that ends the process.
 */
import * as pulumi from "@pulumi/pulumi";

pulumi.runtime.setMocks(
  {
    newResource: (args: pulumi.runtime.MockResourceArgs) => ({
      id: `${args.name}-id`,
      state: args.inputs,
    }),
    call: (args: pulumi.runtime.MockCallArgs) => args.inputs as Record<string, unknown>,
  },
  "mistral-small",
  "test",
  false,
);
const { MistralSmallDeployment } = await import("../../src/index.ts");
const msd = new MistralSmallDeployment("bad-later", {
  spec: { gpu: pulumi.output({ type: "a100-80gb" as const, tensorParallelSize: 3 as 1 }) },
  waitForReady: false,
});
msd.validation.then(
  () => console.log("validation: passed"),
  (err: unknown) => console.log(`validation: ${String(err)}`),
);
