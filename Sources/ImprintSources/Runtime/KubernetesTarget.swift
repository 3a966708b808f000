import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `pod:NAMESPACE/NAME[/CONTAINER]` and `node:`: the Kubernetes containers running on this machine, read from the
/// container runtime's own state — no kubelet, no API server. containerd keeps each container's OCI bundle in its
/// task state directory (`/run/containerd/io.containerd.runtime.v2.task/k8s.io/ID/config.json`, with the
/// annotations the CRI plugin sets for kubelet, and `init.pid`); CRI-O keeps it in
/// `/run/containers/storage/overlay-containers/ID/userdata/` (`config.json`, `pidfile`). Each container is then
/// verified through `/proc/PID/root` as `pid:` is. Pause containers (sandboxes) are left out.
package struct KubernetesTarget {
    /// `NAMESPACE/NAME` to restrict to one pod (nil: every pod on the node).
    package var pod: String?
    package var container: String?
    /// The runtime's state directories to read (`IMPRINT_RUNTIME_STATE`, colon-separated, overrides them).
    package var stateDirectories: [String]

    package static let defaultStateDirectories = ["/run/containerd/io.containerd.runtime.v2.task/k8s.io",
                                                 "/run/containers/storage/overlay-containers"]

    package static func isKubernetes(_ spec: String) -> Bool { spec.hasPrefix("pod:") || spec == "node:" || spec.hasPrefix("node:") }

    /// - Throws: `badInput` for a pod spec without namespace and name.
    package init(parsing spec: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        if spec.hasPrefix("pod:") {
            let parts = spec.dropFirst(4).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 || parts.count == 3, !parts.contains(where: \.isEmpty) else {
                throw ImprintError.badInput("\(spec): expected pod:NAMESPACE/NAME or pod:NAMESPACE/NAME/CONTAINER")
            }
            pod = parts[0] + "/" + parts[1]
            container = parts.count == 3 ? parts[2] : nil
        } else if spec != "node:" {
            throw ImprintError.badInput("\(spec): expected node: (every pod container on this node)")
        }
        if let dirs = environment["IMPRINT_RUNTIME_STATE"], !dirs.isEmpty {
            stateDirectories = dirs.split(separator: ":").map(String.init)
        } else {
            stateDirectories = KubernetesTarget.defaultStateDirectories
        }
    }

    /// One container as the runtime's state describes it.
    package struct Bundle {
        package var id: String
        package var namespace: String
        package var pod: String
        package var container: String
        package var pid: Int32?
    }

    /// The pod containers (not sandboxes) in the state directories.
    package func bundles() -> [Bundle] {
        var out: [Bundle] = []
        for dir in stateDirectories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for id in names.sorted() {
                // containerd: DIR/ID/config.json + init.pid; CRI-O: DIR/ID/userdata/config.json + pidfile.
                let candidates = [(dir + "/" + id + "/config.json", dir + "/" + id + "/init.pid"),
                                  (dir + "/" + id + "/userdata/config.json", dir + "/" + id + "/userdata/pidfile")]
                for (config, pidFile) in candidates {
                    guard let bytes = ProcessTable.readSmall(config, limit: 16 << 20),
                          let spec = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                          let a = spec["annotations"] as? [String: String] else { continue }
                    let type = a["io.kubernetes.cri.container-type"] ?? a["io.kubernetes.cri-o.ContainerType"] ?? "container"
                    guard type == "container",
                          let ns = a["io.kubernetes.cri.sandbox-namespace"] ?? a["io.kubernetes.pod.namespace"],
                          let pod = a["io.kubernetes.cri.sandbox-name"] ?? a["io.kubernetes.pod.name"],
                          let name = a["io.kubernetes.cri.container-name"] ?? a["io.kubernetes.container.name"] else { continue }
                    let pid = ProcessTable.readSmall(pidFile).flatMap { Int32(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) }
                    out.append(Bundle(id: id, namespace: ns, pod: pod, container: name, pid: pid))
                    break
                }
            }
        }
        return out
    }

    /// The containers to verify, by namespace, pod and container name.
    /// - Throws: `notFound` naming the state directories when there is none.
    package func members() throws -> [FleetMember] {
        let found = bundles().filter { b in
            (pod == nil || "\(b.namespace)/\(b.pod)" == pod) && (container == nil || b.container == container)
        }
        guard !found.isEmpty else {
            let what = pod.map { "pod \($0)" + (container.map { " container \($0)" } ?? "") } ?? "pod container"
            throw ImprintError(.notFound, "no \(what) in the runtime state at \(stateDirectories.joined(separator: ", ")) (set IMPRINT_RUNTIME_STATE; imprint must run on the node, as root)")
        }
        return found.map { b in
            let alive = b.pid.map { access("/proc/\($0)", F_OK) == 0 } ?? false
            return FleetMember(name: "\(b.namespace)/\(b.pod)/\(b.container)", service: b.container, number: nil,
                               pod: "\(b.namespace)/\(b.pod)", target: alive ? "pid:\(b.pid!)" : nil, image: nil)
        }.sorted { $0.name < $1.name }
    }
}
