/// How the runner registers.
public enum RunnerCredential: Sendable, Hashable {
    case registrationToken(SecretSource)
    case jitConfig(SecretSource)
    case pat(SecretSource)
    /// A GitHub App: its id, the installation id, and the path of its PEM private key.
    case app(appID: String, installationID: String, privateKeyFile: String)
}
