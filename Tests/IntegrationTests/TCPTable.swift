import Foundation
import TailgateTestSupport

/// The IPv4 TCP sockets of this network namespace, from /proc/net/tcp: what the kernel knows about a
/// connection that neither end can see from its own socket (an unanswered SYN, bytes the peer has not read).
enum TCPTable {
    struct Row {
        let localPort: Int
        let remotePort: Int
        /// The kernel's state number: 1 ESTABLISHED, 2 SYN_SENT, 10 LISTEN, …
        let state: Int
        /// Bytes received but not yet read by the socket's owner.
        let unread: Int
    }

    static let synSent = 2

    static func rows() -> [Row] {
        let table = ProcFile.read("/proc/net/tcp") ?? ""
        return table.split(separator: "\n").dropFirst().compactMap { line in
            // sl local_address rem_address st tx_queue:rx_queue …
            let fields = line.split(separator: " ")
            guard fields.count > 4,
                  let localPort = fields[1].split(separator: ":").last.flatMap({ Int($0, radix: 16) }),
                  let remotePort = fields[2].split(separator: ":").last.flatMap({ Int($0, radix: 16) }),
                  let state = Int(fields[3], radix: 16),
                  let unread = fields[4].split(separator: ":").last.flatMap({ Int($0, radix: 16) })
            else { return nil }
            return Row(localPort: localPort, remotePort: remotePort, state: state, unread: unread)
        }
    }

    /// Whether the accepting end of `client`'s connection to `port` has read everything sent so far.
    static func peerHasReadEverything(of client: RawClient, port: Int) -> Bool {
        let clientPort = client.localPort
        return rows().contains { $0.localPort == port && $0.remotePort == clientPort && $0.unread == 0 }
    }
}
