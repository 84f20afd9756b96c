import Glibc
import NIOCore
import Synchronization
import TailgateSystem

/// The listening sockets this process was started with, until the configuration claims them: systemd's
/// (`LISTEN_FDS`, from the unit's file descriptor store after a restart or a crash) or the previous tailgate's
/// on an upgrade hand-over (`TAILGATE_LISTEN_FDS`). A socket kept open across the gap keeps its backlog, so
/// a client connecting meanwhile waits to be accepted instead of being refused.
///
/// Sockets are matched to binds by the address they are bound to (getsockname), not by name; the name says
/// what the socket served (`listen_…` or `health_…`) and lets the store forget it (`FDSTOREREMOVE`).
public final class InheritedSockets: Sendable {
    public struct Socket: Sendable {
        public let descriptor: CInt
        public let name: String
        public let address: SocketAddress
    }

    /// What a socket serves, the prefix of its name.
    public enum Kind: String, Sendable {
        case listener = "listen"
        case health
    }

    private let sockets: Mutex<[Socket]>
    /// Descriptors passed in that are not usable listening sockets, with why (logged once at start).
    public let problems: [String]

    /// How many usable sockets were passed in.
    public let passedIn: Int

    public init(_ sockets: [Socket] = [], problems: [String] = []) {
        self.passedIn = sockets.count
        self.sockets = Mutex(sockets)
        self.problems = problems
    }

    /// The store's name for a socket of `kind` bound to `address`: systemd allows any ASCII but ':' and
    /// control characters, up to 255 bytes.
    public static func name(_ kind: Kind, _ address: SocketAddress) -> String {
        kind.rawValue + "_" + address.endpointDescription.replacingColons()
    }

    /// Reads (and removes from the environment) the sockets passed in; the descriptors become close-on-exec
    /// and non-blocking. A variable naming another process (LISTEN_PID) is ignored, as sd_listen_fds does.
    public static func fromEnvironment() -> InheritedSockets {
        var passed: [(CInt, String)] = []
        if let count = SystemEnvironment.take("LISTEN_FDS").flatMap({ Int($0) }),
           let pid = SystemEnvironment.take("LISTEN_PID").flatMap({ Int32($0) }), pid == getpid(), count > 0, count < 4_096 {
            let names = SystemEnvironment.take("LISTEN_FDNAMES")?.split(separator: ":", omittingEmptySubsequences: false).map(String.init) ?? []
            for index in 0..<count { passed.append((CInt(3 + index), index < names.count ? names[index] : "unknown")) }
        }
        _ = SystemEnvironment.take("LISTEN_FDNAMES")
        if let list = SystemEnvironment.take("TAILGATE_LISTEN_FDS") {
            for entry in list.split(separator: ",") {
                let parts = entry.split(separator: "=", maxSplits: 1)
                if parts.count == 2, let descriptor = CInt(parts[0]), descriptor > 2 { passed.append((descriptor, String(parts[1]))) }
            }
        }
        var sockets: [Socket] = [], problems: [String] = []
        for (descriptor, name) in passed {
            guard fcntl(descriptor, F_SETFD, FD_CLOEXEC) == 0 else {
                problems.append("descriptor \(descriptor) (\(name)) is not open")
                continue
            }
            var accepting: CInt = 0, type: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            let listening = getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting == 1
            length = socklen_t(MemoryLayout<CInt>.size)
            let stream = getsockopt(descriptor, SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == CInt(SOCK_STREAM.rawValue)
            guard listening, stream, let address = try? ListeningSocket.localAddress(of: descriptor), address.port != nil else {
                problems.append("descriptor \(descriptor) (\(name)) is not a listening TCP socket; closed")
                close(descriptor)
                continue
            }
            let flags = fcntl(descriptor, F_GETFL)
            _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
            // As a socket of our own has (accepted sockets inherit it); one from a socket unit may not.
            try? ListeningSocket.set(descriptor, CInt(IPPROTO_TCP), TCP_NODELAY, "TCP_NODELAY")
            sockets.append(Socket(descriptor: descriptor, name: name, address: address))
        }
        return InheritedSockets(sockets, problems: problems)
    }

    /// How many are still unclaimed.
    public var count: Int { sockets.withLock { $0.count } }

    /// Takes the socket of `kind` bound to `address`, if one was passed in. A socket without a name of ours
    /// (a socket unit's) serves a listener.
    public func take(_ kind: Kind, _ address: SocketAddress) -> CInt? {
        sockets.withLock { sockets in
            guard let index = sockets.firstIndex(where: { socket in
                socket.address == address && (socket.name.hasPrefix(kind.rawValue + "_") || (kind == .listener && !socket.name.hasPrefix("health_")))
            }) else { return nil }
            return sockets.remove(at: index).descriptor
        }
    }

    /// Closes the sockets of `kind` no bind claimed (the configuration no longer names them) and returns them.
    public func closeUnclaimed(_ kind: Kind) -> [Socket] {
        let left = sockets.withLock { sockets in
            let left = sockets.filter { ($0.name.hasPrefix("health_") ? Kind.health : .listener) == kind }
            sockets.removeAll { ($0.name.hasPrefix("health_") ? Kind.health : .listener) == kind }
            return left
        }
        for socket in left { close(socket.descriptor) }
        return left
    }
}

extension String {
    fileprivate func replacingColons() -> String {
        String(map { $0 == ":" ? "_" : $0 })
    }
}
