export {
  RegistryClient,
  type ManifestHead,
  type ManifestResult,
  type PutBlobResult,
  type RegistryClientOptions,
  type RetryInfo,
} from './client.js'
export {
  type Credentials,
  type EnvAuthConfig,
  type ResolveCredentialsOptions,
  dockerConfigPath,
  helperServerURL,
  isDockerHub,
  normaliseRegistryKey,
  resolveCredentials,
  runCredentialHelper,
} from './credentials.js'
export {parseChallenge, type Challenge} from './transport/challenge.js'
export {isLoopbackHost} from './transport/origin.js'
export {DEFAULT_RETRY_POLICY, type RetryPolicy} from './transport/retry.js'
