/// What the step relay's two clients and the relay itself agree on, in one place: the agent's
/// `GuestRelay` (which serves and also sends from `runner-agent hook`) and `runner-hook`.
package enum RelayWire {
    /// The largest request the relay reads (length prefix excluded); a larger one is refused.
    package static let requestLimit = 4 << 20

    /// How a request that carries the runner's own JSON begins: `{"hook":`, the JSON, `}`
    /// (what `runner-hook` sends for a `run_script_step`). Any other request is a plain step.
    package static let hookRequestPrefix = Array(#"{"hook":"#.utf8)

    /// The request that carries `json` (the runner's JSON object, as it came).
    package static func hookRequest(_ json: [UInt8]) -> [UInt8] {
        hookRequestPrefix + json + [UInt8(ascii: "}")]
    }

    /// The runner's JSON a request carries, or nil when it is a plain step request.
    package static func hookJSON(_ request: [UInt8]) -> [UInt8]? {
        guard request.starts(with: hookRequestPrefix), request.count > hookRequestPrefix.count,
            request.last == UInt8(ascii: "}")
        else { return nil }
        return Array(request[hookRequestPrefix.count..<(request.count - 1)])
    }
}
