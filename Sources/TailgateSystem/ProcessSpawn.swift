import CTailgateLinux
import Glibc

/// Starting a process that keeps some of this one's descriptors, and passing descriptors over a unix socket.
public enum ProcessSpawn {
    /// Starts `path` with `arguments` (the first is argv[0]) and `environment` ("NAME=value"), keeping the
    /// descriptors in `keep` open in the child (every other stays close-on-exec). Returns the child's pid.
    public static func spawn(_ path: String, arguments: [String], environment: [String], keeping keep: [CInt]) throws(SystemCallError) -> pid_t {
        func cStrings(_ strings: [String]) -> [UnsafeMutablePointer<CChar>?] { strings.map { strdup($0) } + [nil] }
        let argv = cStrings(arguments), envp = cStrings(environment)
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: CInt = 0
        let result = tailgate_spawn_keeping(&pid, path, argv, envp, keep, CInt(keep.count))
        guard result == 0 else { throw SystemCallError("posix_spawn \(path)", errno: result) }
        return pid
    }

    /// Sends one datagram to the unix socket at `path` (bytes; a leading 0 for the abstract namespace) with
    /// `descriptors` attached. True when all of it was sent.
    public static func send(_ message: [UInt8], to path: [UInt8], descriptors: [CInt]) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let sent = message.withUnsafeBytes { bytes in
            path.withUnsafeBytes { name in
                tailgate_send_with_descriptors(fd, name.baseAddress, name.count, bytes.baseAddress, bytes.count, descriptors, CInt(descriptors.count))
            }
        }
        return sent == message.count
    }
}
