/// Ring collectives on a cluster (bandwidth term + latency per step; inside a node at the links'
/// bandwidth x `intraNodeEfficiency`), and where a group's ring runs. Megatron's rank order puts TP ranks next to each other, then DP, then PP, so a TP group
/// of at most `devicesPerNode` stays inside a node while DP and PP groups usually cross nodes.
public struct CommunicationModel: Sendable {
    public let cluster: ClusterSpec

    public init(cluster: ClusterSpec) { self.cluster = cluster }

    /// Bandwidth and latency of a ring over a group of `size` ranks whose consecutive members are
    /// `stride` ranks apart. Inside a node it is the device's link; across nodes each node's
    /// network is shared by the rings that leave it at once (one per device in the node not in
    /// the same group).
    public func link(groupSize size: Int, stride: Int) -> (bandwidth: Double, latency: Double) {
        let perNode = cluster.devicesPerNode
        if size * stride <= perNode || size == 1 {
            return (cluster.intraNodeBandwidth * cluster.intraNodeEfficiency, cluster.intraNodeLatency)
        }
        let membersPerNode = max(1, perNode / max(stride, 1))
        let ringsPerNode = Double(perNode) / Double(min(membersPerNode, size))
        return (cluster.interNodeBandwidth / ringsPerNode, cluster.interNodeLatency)
    }

    /// Seconds to all-reduce `bytes` over a ring of `size`: `2 (n-1)/n * bytes / bw + 2 (n-1) lat`.
    public func allReduce(bytes: Double, groupSize n: Int, stride: Int) -> Double {
        guard n > 1 else { return 0 }
        let (bandwidth, latency) = link(groupSize: n, stride: stride)
        return 2 * Double(n - 1) / Double(n) * bytes / bandwidth + 2 * Double(n - 1) * latency
    }

    /// Seconds of a reduce-scatter or all-gather of `bytes` (the full buffer) over a ring.
    public func reduceScatter(bytes: Double, groupSize n: Int, stride: Int) -> Double {
        guard n > 1 else { return 0 }
        let (bandwidth, latency) = link(groupSize: n, stride: stride)
        return Double(n - 1) / Double(n) * bytes / bandwidth + Double(n - 1) * latency
    }

    /// Seconds of an all-gather into a buffer of `bytes` over a ring (as long as a reduce-scatter).
    public func allGather(bytes: Double, groupSize n: Int, stride: Int) -> Double {
        reduceScatter(bytes: bytes, groupSize: n, stride: stride)
    }

    /// Seconds of one point-to-point transfer between neighbouring pipeline stages.
    public func sendReceive(bytes: Double, groupSize n: Int, stride: Int) -> Double {
        let (bandwidth, latency) = link(groupSize: n, stride: stride)
        return bytes / bandwidth + latency
    }
}
