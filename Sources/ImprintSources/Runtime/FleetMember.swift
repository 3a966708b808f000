import Foundation

/// One container of a fleet target: a compose project's container, or a pod's container on this node.
package struct FleetMember: Sendable {
    /// The container's name (compose) or `NAMESPACE/POD/CONTAINER` (Kubernetes).
    package var name: String
    /// The compose service, or the Kubernetes container name: what its manifest is chosen by.
    package var service: String
    /// The compose replica number.
    package var number: Int?
    /// `NAMESPACE/POD` for a pod's container.
    package var pod: String?
    /// How `verify` reaches it (`docker:ID`, `pid:N`); nil when it is not running.
    package var target: String?
    /// The image reference the container was created from (compose: the service's image).
    package var image: String?

    package init(name: String, service: String, number: Int? = nil, pod: String? = nil, target: String?, image: String?) {
        self.name = name; self.service = service; self.number = number; self.pod = pod; self.target = target; self.image = image
    }
}

