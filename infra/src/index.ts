/** Pulumi components for the Mistral Small 4 operator. */
export { MistralSmallOperator, crdManifests, type MistralSmallOperatorArgs } from "./operator.ts";
export {
  MistralSmallDeployment,
  type Condition,
  type DeepInput,
  type MistralSmallDeploymentArgs,
  type SpecArgs,
} from "./deployment.ts";
export type { SpecInput, Status } from "./generated/api/schema.ts";
export { ValidationError } from "./generated/api/validate.ts";
