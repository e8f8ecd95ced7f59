"""Kueue (sigs.k8s.io/kueue) as the operator meets it: the queue label, the Workload, names.

A Job labelled `kueue.x-k8s.io/queue-name: <LocalQueue>` is Kueue's: created
suspended, it waits until its ClusterQueue has quota for it on a ResourceFlavor,
then Kueue admits it (injecting the flavor's node labels and tolerations into the
pod template) and unsuspends it. For each such Job Kueue makes a Workload, owned by
the Job and labelled with the Job's uid; the Workload's conditions say why the Job
waits (QuotaReserved, Admitted, Evicted, ...).

A queue name is a label value that Kueue's Job webhook reads as an object name
(pkg/controller/jobframework/validation.go, `ValidateLabelAsCRDName`:
`IsDNS1123Subdomain`): a DNS subdomain no longer than a label value's 63 characters.
The same rule, and the same sentence, at admission (a CEL rule on each field), in
the operator's pydantic models and for the chart's default (settings.py): one
`Rule` of `api.admission`, `queue_name_rule`.
"""

from __future__ import annotations

GROUP = "kueue.x-k8s.io"
WORKLOADS = "workloads"
#: The Job label that names the LocalQueue (in the Job's namespace) it waits in.
QUEUE_LABEL = f"{GROUP}/queue-name"
#: The label Kueue puts on the Workload it makes for a Job: the Job's uid.
JOB_UID_LABEL = f"{GROUP}/job-uid"
#: Workload API versions, newest first: the first one the cluster serves is read.
WORKLOAD_VERSIONS = ("v1beta2", "v1beta1")

QUEUE_NAME_MAX = 63
# A DNS-1123 subdomain ('.' inside a class: the same text is a CEL string and a regex).
QUEUE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
