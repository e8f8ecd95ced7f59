{{- define "bodypose.name" -}}bodypose-operator{{- end -}}
{{- define "bodypose.labels" -}}
app.kubernetes.io/name: {{ include "bodypose.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "bodypose.selector" -}}
app.kubernetes.io/name: {{ include "bodypose.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- /*
An image reference from {repository, tag}: imageRegistry prepended when set, the
chart's appVersion when tag is empty. Call: include "bodypose.image" (list $ .Values.image)
*/ -}}
{{- define "bodypose.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- $repository := $image.repository -}}
{{- with $root.Values.imageRegistry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository -}}
{{- end -}}
{{- printf "%s:%s" $repository (default $root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- define "bodypose.peering" -}}{{ include "bodypose.name" . }}-{{ .Release.Name }}{{- end -}}
{{- /*
"true" when the operator watches Kueue's Workloads (kueue.enabled, or a default queue in
jobs.queueName), else "false": the operator's BODYPOSE_KUEUE and kueue-rbac.yaml's switch.
*/ -}}
{{- define "bodypose.queueing" -}}
{{- if or .Values.kueue.enabled .Values.jobs.queueName -}}true{{- else -}}false{{- end -}}
{{- end -}}
{{- /*
The rules the operator needs in every namespace it watches (rbac.yaml: a Role in each
listed namespace, or a ClusterRole when it watches all). Secrets and Kueue's Workloads
have their own files (secrets-rbac.yaml, kueue-rbac.yaml).
*/ -}}
{{- define "bodypose.watchedRules" -}}
# Its resources: kopf lists and watches them and patches their annotations; the
# operator gets one when its Job changes.
- apiGroups: ["bodypose.dev"]
  resources: ["bodyposeexports"]
  verbs: ["get", "list", "watch", "patch"]
# Their status: a JSON merge patch, only when it changed.
- apiGroups: ["bodypose.dev"]
  resources: ["bodyposeexports/status"]
  verbs: ["patch"]
# The Jobs it owns: watched, listed by their resource's label, created, and deleted
# when a spec edit makes one obsolete. Never updated or patched.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "delete"]
# A Job's pods: one list call by the Job's label (termination message, why it waits).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# Events on its resources (kopf posts core v1 events).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}
