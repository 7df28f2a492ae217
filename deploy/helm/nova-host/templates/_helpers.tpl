{{/* The release's resource name prefix, at most 63 characters. */}}
{{- define "nova-host.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "nova-host.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component (server or worker): pass (list . "server"). */}}
{{- define "nova-host.selector" -}}
app.kubernetes.io/name: {{ (index . 0).Chart.Name }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The image reference. */}}
{{- define "nova-host.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Environment both deployments share: the store URL from a mounted Secret, the ConfigMap's files. */}}
{{- define "nova-host.env" -}}
- name: NOVA_STORE_FILE
  value: /run/secrets/nova-host-store/{{ .Values.secrets.store.key }}
- name: NOVA_POLICY
  value: /etc/nova-host/policy.json
- name: NOVA_DRIVER_CONFIG
  value: /etc/nova-host/drivers.json
- name: NOVA_DATA_DIR
  value: /var/lib/nova-host
{{- end -}}

{{/* Volumes both deployments share (the data directory and /tmp are scratch: state lives in PostgreSQL). */}}
{{- define "nova-host.volumes" -}}
- name: config
  configMap:
    name: {{ include "nova-host.fullname" . }}
- name: store
  secret:
    secretName: {{ .Values.secrets.store.name }}
    items:
      - key: {{ .Values.secrets.store.key }}
        path: {{ .Values.secrets.store.key }}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "nova-host.volumeMounts" -}}
- name: config
  mountPath: /etc/nova-host
  readOnly: true
- name: store
  mountPath: /run/secrets/nova-host-store
  readOnly: true
- name: data
  mountPath: /var/lib/nova-host
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Pod-level settings both deployments share. */}}
{{- define "nova-host.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
