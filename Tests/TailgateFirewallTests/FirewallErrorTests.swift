import Glibc
import Testing
@testable import TailgateFirewall
import CNftables

@Test func permissionErrnosBecomePermissionDeniedWithWhatToDo() {
    for code in [EPERM, EACCES] {
        let error = FirewallError.from(errno: code, during: "applying table inet tailgate")
        guard case .permissionDenied("applying table inet tailgate") = error else {
            Issue.record("\(code) → \(error)")
            continue
        }
        #expect(error.description.contains("needs CAP_NET_ADMIN (run as root or grant the capability"))
    }
}

@Test func missingKernelSupportIsUnavailable() {
    for code in [EPROTONOSUPPORT, EAFNOSUPPORT] {
        let error = FirewallError.from(errno: code, during: "reading the nf_tables generation")
        guard case .unavailable = error else {
            Issue.record("\(code) → \(error)")
            continue
        }
        #expect(error.description.hasPrefix("nf_tables is not available: reading the nf_tables generation: "))
        #expect(error.description.contains("modprobe nf_tables"))
    }
}

@Test func otherErrnosNameTheCallAndTheError() {
    let error = FirewallError.from(errno: ENOBUFS, during: "reading table inet tailgate")
    #expect(error.description == "reading table inet tailgate failed: No buffer space available (errno \(ENOBUFS))")
}

@Test func batchDescriptionsNameTheFailingMessage() {
    var batch = NetlinkBatch(beginSequence: 100)
    batch.append(NFT_MSG_NEWTABLE, flags: 0, "create table inet tailgate") { _ in }
    batch.append(NFT_MSG_NEWTABLE, flags: 0, "add set tcp_ports") { _ in }
    batch.finish()
    #expect(batch.acknowledgedCount == 2)
    #expect(batch.describe(102) == "message 2 of 2 (add set tcp_ports)")
    #expect(batch.describe(100) == "the batch header")
    // BEGIN, two messages, END: 20 + 2 × 20 + 20 bytes (nfgenmsg headers only).
    #expect(batch.bytes.count == 80)
}

/// The real unprivileged case, e.g. `swift test` as a normal user: the kernel refuses the batch
/// before looking at it, so this cannot change the host's ruleset. Skipped when the process has
/// CAP_NET_ADMIN (the namespace tests drop it on a thread instead).
@Test(.enabled(if: !Capabilities.threadHasNetAdmin, "runs only without CAP_NET_ADMIN"))
func anUnprivilegedApplyIsPermissionDenied() {
    let failure = firewallError { () throws(FirewallError) in try NetlinkFirewall().apply(FirewallRuleset(Configurations.example)) }
    guard case .permissionDenied("applying table inet tailgate")? = failure else {
        Issue.record("expected .permissionDenied, got \(String(describing: failure))")
        return
    }
}
