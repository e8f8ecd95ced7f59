"""The local cluster's kubelet for pods: runs each container inside its image.

kwok plays the kubelet for the fake nodes' heartbeats, but it only pretends
to run pods. For every pod the scheduler binds to a node, this program does
what a kubelet with a container runtime does (kwok's pod stages are off while
it runs, hack/cluster/kwok-stages.yaml):

- finds the image the container names among the images loaded into this
  cluster (devcluster/image_store.py); one that is not there waits with reason
  `ErrImagePull`, then `ImagePullBackOff` with back-off, and starts as soon as
  it is loaded (`imagePullPolicy: Never`: `ErrImageNeverPull`);
- resolves the environment the kubelet's way: the image's `Env`, then the
  service variables (KUBERNETES_SERVICE_HOST/PORT point at the API server on
  loopback: the Service's virtual IP is routed nowhere here), then `envFrom`,
  then `env` in order (literal `value`, `secretKeyRef`, `configMapKeyRef`,
  `fieldRef`; `optional` refs may be missing), `$(VAR)` expanded in env values,
  command and args (`$$` escapes);
- argv, working directory and user from the pod and the image together
  (devcluster/containers.py); `runAsNonRoot` refused for a root user;
- volumes: `emptyDir` (world-writable, as the kubelet makes it), `secret`,
  `configMap`, `projected` (service-account token from the TokenRequest API
  bound to the pod, the cluster CA, the namespace: what the ServiceAccount
  admission plugin injects as kube-api-access-*, so in-cluster clients talk to
  the API server as the pod's ServiceAccount and RBAC applies) and
  `downwardAPI`; each bound at its mountPath, `subPath` honoured;
- a missing Secret, ConfigMap or key leaves the pod Pending with the container
  waiting in `CreateContainerConfigError`, retried every two seconds;
- runs init containers in order, then the one main container, in their own
  mount and PID namespaces, chrooted into an overlay of the image
  (devcluster/container_init.py), with `readOnlyRootFilesystem` honoured;
- posts the pod's status as a kubelet would: Running (conditions, start time,
  host and pod IP, container state with the image's digest as `imageID`), then
  Succeeded or Failed with the exit code (128+N for signal N), the termination
  message (read from the file bound at `terminationMessagePath`, at most 4096
  bytes; `FallbackToLogsOnError` takes the log tail: 80 lines, 2048 bytes),
  restart count; a command the image lacks ends as `StartError`, exit 128, with
  the runtime's message; `restartPolicy: OnFailure` restarts with back-off;
  `activeDeadlineSeconds` kills (phase Failed, reason DeadlineExceeded);
  deleting the pod kills it (SIGTERM, SIGKILL after the grace period), then
  removes it, as a kubelet confirms a graceful deletion;
- stdout and stderr go to `<log dir>/<namespace>/<pod>/<container>.log`, kept
  after the pod ends (`kubectl logs` does not reach them).

Not emulated: networking (pods share the machine's network, as with
hostNetwork), resource limits, probes, sidecars, more than one main container
(such a pod is failed with reason ExecutorUnsupported), capabilities and
seccomp beyond running as the pod's user.

Run it as `python -m devcluster.executor --kubeconfig FILE --work-dir DIR
--images FILE` (the local control plane starts it).
"""
