import NIOCore
import TailgateProxy

/// The unit's file descriptor store (`FileDescriptorStoreMax=`): each listening socket is handed to systemd
/// when it is opened and taken out when a reload closes it, so that a restart or a crash closes none — the
/// next process gets them back in `LISTEN_FDS`. Not under systemd, or with the store off, systemd keeps
/// nothing and this costs one datagram per bind.
struct SocketStore: Sendable {
    let notifier: SystemdNotifier

    func keep(_ kind: InheritedSockets.Kind, _ address: SocketAddress, _ descriptor: CInt) {
        notifier.send("FDSTORE=1\nFDNAME=\(InheritedSockets.name(kind, address))", descriptors: [descriptor])
    }

    func forget(_ kind: InheritedSockets.Kind, _ address: SocketAddress) {
        forget(InheritedSockets.name(kind, address))
    }

    func forget(_ name: String) {
        notifier.send("FDSTOREREMOVE=1\nFDNAME=\(name)")
    }
}
