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
export {DEFAULT_RETRY_POLICY, isLoopbackHost, parseChallenge, type Challenge, type RetryPolicy} from './http.js'
