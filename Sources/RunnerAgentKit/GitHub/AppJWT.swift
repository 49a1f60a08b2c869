import Crypto
import FoundationEssentials
import RunnerCore
import _CryptoExtras

/// The JSON Web Token a GitHub App authenticates with: RS256 over
/// `{"iat": now-60, "exp": now+540, "iss": APP_ID}`, signed with the App's private key.
public struct AppJWT: Sendable {
    public let appID: String
    private let key: _RSA.Signing.PrivateKey

    /// Loads the App's PEM private key (PKCS#1 as GitHub issues it, or PKCS#8).
    public init(appID: String, privateKeyPEM: Secret, keyInput: String) throws(RunnerError) {
        guard !appID.isEmpty, appID.allSatisfy({ $0.isASCII && ($0.isNumber || $0.isLetter) }) else {
            throw RunnerError(
                .invalidConfig, input: "RUNNER_APP_ID", problem: "'\(appID)' is not a GitHub App ID or client ID",
                fix: "set RUNNER_APP_ID to the App ID shown on the App's settings page")
        }
        self.appID = appID
        do {
            self.key = try _RSA.Signing.PrivateKey(pemRepresentation: privateKeyPEM.value)
        } catch {
            throw RunnerError(
                .invalidConfig, input: keyInput, problem: "is not a PEM RSA private key of 2048 bits or more",
                fix: "download a new private key from the GitHub App's settings and point \(keyInput) at it")
        }
    }

    /// A token valid from one minute ago (clock skew) for nine minutes (GitHub's limit is ten).
    public func token(now: Int = Int(Date().timeIntervalSince1970)) throws(RunnerError) -> Secret {
        let header = #"{"alg":"RS256","typ":"JWT"}"#
        let payload = #"{"iat":\#(now - 60),"exp":\#(now + 540),"iss":"\#(appID)"}"#
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        let signature: _RSA.Signing.RSASignature
        do {
            signature = try key.signature(for: Array(signingInput.utf8), padding: .insecurePKCS1v1_5)
        } catch {
            throw RunnerError(
                .internal, input: "RUNNER_APP_PRIVATE_KEY_FILE", problem: "signing failed", underlying: error)
        }
        return Secret(signingInput + "." + Base64URL.encode(Array(signature.rawRepresentation)))
    }
}

/// Base64 with the URL alphabet and no padding (RFC 7515).
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacing("+", with: "-").replacing("/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }
}
