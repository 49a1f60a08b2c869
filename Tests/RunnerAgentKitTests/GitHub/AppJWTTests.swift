import Crypto
import FoundationEssentials
import RunnerCore
import Testing
import _CryptoExtras

@testable import RunnerAgentKit

struct AppJWTTests {
    @Test func jwtIsRS256SignedAndVerifiesWithThePublicKey() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let jwt = try AppJWT(appID: "123", privateKeyPEM: Secret(key.pemRepresentation), keyInput: "key").token(
            now: 1_700_000_000)
        let parts = jwt.value.split(separator: ".").map(String.init)
        try #require(parts.count == 3)
        #expect(decode(parts[0]) == #"{"alg":"RS256","typ":"JWT"}"#)
        #expect(decode(parts[1]) == #"{"iat":1699999940,"exp":1700000540,"iss":"123"}"#)
        let signature = _RSA.Signing.RSASignature(rawRepresentation: try #require(bytes(parts[2])))
        #expect(
            key.publicKey.isValidSignature(
                signature, for: Array((parts[0] + "." + parts[1]).utf8), padding: .insecurePKCS1v1_5))
        #expect(!jwt.value.contains("=") && !jwt.value.contains("+") && !jwt.value.contains("/"))
    }

    @Test func badKeysAndIDsAreConfigurationErrors() throws {
        #expect(throws: RunnerError.self) {
            try AppJWT(appID: "123", privateKeyPEM: Secret("not a key"), keyInput: "RUNNER_APP_PRIVATE_KEY_FILE")
        }
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        #expect(throws: RunnerError.self) {
            try AppJWT(appID: "12 3", privateKeyPEM: Secret(key.pemRepresentation), keyInput: "k")
        }
    }

    func bytes(_ base64url: String) -> [UInt8]? {
        var text = base64url.replacing("-", with: "+").replacing("_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text).map { [UInt8]($0) }
    }

    func decode(_ base64url: String) -> String? {
        bytes(base64url).map { String(decoding: $0, as: UTF8.self) }
    }
}
