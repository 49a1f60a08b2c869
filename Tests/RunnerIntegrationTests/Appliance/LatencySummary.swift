/// Median, p95 and max of a set of durations (seconds): a rare stall hides behind a median.
struct LatencySummary: CustomStringConvertible {
    let sorted: [Double]

    init(_ values: [Double]) { sorted = values.sorted() }

    /// The value at quantile `q` (nearest rank); 0 for no values.
    func quantile(_ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int((q * Double(sorted.count - 1)).rounded()))]
    }

    var median: Double { quantile(0.5) }
    var p95: Double { quantile(0.95) }
    var max: Double { sorted.last ?? 0 }

    var description: String {
        func ms(_ seconds: Double) -> String { "\(Int((seconds * 1000).rounded())) ms" }
        return "p50 \(ms(median)), p95 \(ms(p95)), max \(ms(max)) (n=\(sorted.count))"
    }
}
