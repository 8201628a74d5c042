/** Pulumi components for the Mistral Small 4 operator. */
export { MistralSmallOperator, crdManifests, type MistralSmallOperatorArgs } from "./operator.ts";
export {
  MistralSmallDeployment,
  type Condition,
  type MistralSmallDeploymentArgs,
} from "./deployment.ts";
export type { SpecInput, Status } from "../../src/api/schema.ts";
