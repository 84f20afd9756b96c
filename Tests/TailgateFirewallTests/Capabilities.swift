import Glibc
import TailgateTestSupport

/// Drops CAP_NET_ADMIN from the calling thread only (capset(2) is per thread; glibc exports it
/// without a header, so it is looked up with dlsym).
enum Capabilities {
    private struct Header {
        var version: UInt32 = 0x2008_0522  // _LINUX_CAPABILITY_VERSION_3
        var pid: Int32 = 0
    }

    private struct Data {
        var effective: UInt32 = 0
        var permitted: UInt32 = 0
        var inheritable: UInt32 = 0
    }

    /// Whether the calling thread has CAP_NET_ADMIN in its effective set.
    static var threadHasNetAdmin: Bool {
        guard let get = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "capget") else { return true }
        var header = Header()
        var data = [Data(), Data()]
        guard unsafeBitCast(get, to: Call.self)(&header, &data) == 0 else { return true }
        return data[0].effective & netAdmin != 0
    }

    private typealias Call = @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32
    private static let netAdmin: UInt32 = 1 << 12

    static func dropNetAdminFromThisThread() throws {
        guard let get = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "capget"),
              let set = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "capset") else {
            throw TestFailure("capget/capset not found in libc")
        }
        var header = Header()
        var data = [Data(), Data()]
        guard unsafeBitCast(get, to: Call.self)(&header, &data) == 0 else { throw TestFailure("capget: errno \(errno)") }
        data[0].effective &= ~netAdmin
        data[0].permitted &= ~netAdmin
        guard unsafeBitCast(set, to: Call.self)(&header, &data) == 0 else { throw TestFailure("capset: errno \(errno)") }
    }
}
