/// A failed step of a check, thrown between the probe's internal steps.
struct ProbeError: Error {
    var failure: ProbeResult.Failure
    /// The leaf certificate's notAfter, when the failure came after the server sent it.
    var certificateNotAfter: Int64?

    init(_ failure: ProbeResult.Failure, certificateNotAfter: Int64? = nil) {
        self.failure = failure
        self.certificateNotAfter = certificateNotAfter
    }
}
