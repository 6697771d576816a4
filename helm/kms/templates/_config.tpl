{{/* kmsd.toml, shared by every pod of the region. What differs per pod comes from the pod:
node_id from its host name (ordinal + 1), raft_advertise from KMSD_RAFT_ADVERTISE. Top-level keys
come before the first [table], as TOML requires. */}}
{{- define "kms.config" -}}
{{- $grpc := int .Values.ports.grpc -}}
{{- $raft := int .Values.ports.raft -}}
# Rendered by the kms Helm chart for region {{ .Values.region }}.
node_id_from_hostname = true
data_dir = "/var/lib/kms"
listen = "0.0.0.0:{{ $grpc }}"
raft_listen = "0.0.0.0:{{ $raft }}"
region = {{ .Values.region | toJson }}
account = {{ .Values.account | toJson }}
{{- if eq .Values.rootKey.provider "file" }}
# Copied from the root key Secret with mode 0400 by the init container.
root_key_file = "/run/kms/root.key"
{{- end }}
maintenance_interval_secs = {{ int .Values.maintenanceIntervalSeconds }}
{{- if .Values.aws.enabled }}
aws_listen = "0.0.0.0:{{ int .Values.ports.aws }}"
{{- end }}
{{- if .Values.metrics.enabled }}
metrics_listen = "0.0.0.0:{{ int .Values.ports.metrics }}"
{{- end }}
{{- if not .Values.tls.enabled }}
allow_insecure_plaintext = true
{{- end }}
{{- with .Values.admins }}
admins = {{ toJson . }}
{{- end }}
# Pods beyond the initial members ask these members to add them to the region.
join = [
{{- range $i := until (int .Values.initialMembers) }}
  "{{ include "kms.podHost" (list $ $i) }}:{{ $grpc }}",
{{- end }}
]

# The voters of the brand-new region; pod 0 (node 1) initializes it on the first install.
[initial_members]
{{- range $i := until (int .Values.initialMembers) }}
{{ add $i 1 }} = "{{ include "kms.podHost" (list $ $i) }}:{{ $raft }}"
{{- end }}
{{- with .Values.raft }}

[raft]
{{- range $key, $value := . }}
{{ $key }} = {{ int $value }}
{{- end }}
{{- end }}
{{- if .Values.tls.enabled }}

[tls]
cert = "/etc/kms/tls/tls.crt"
key = "/etc/kms/tls/tls.key"
ca = "/etc/kms/tls/ca.crt"
{{- end }}
{{- with .Values.tokens }}

[tokens]
{{- range $principal, $digest := . }}
{{ $principal | toJson }} = {{ $digest | toJson }}
{{- end }}
{{- end }}
{{- range $name, $other := .Values.regions }}

# Another region: multi-Region keys replicate to its client endpoint.
[regions.{{ $name | toJson }}]
endpoint = {{ $other.endpoint | toJson }}
{{- end }}
{{- if ne .Values.rootKey.provider "file" }}

[root_key]
provider = {{ .Values.rootKey.provider | toJson }}
{{- if eq .Values.rootKey.provider "env" }}
variable = "KMS_ROOT_KEY"
{{- else }}
{{- with .Values.rootKey.pkcs11 }}
module = {{ .module | toJson }}
{{- if not (kindIs "invalid" .slot) }}
slot = {{ int .slot }}
{{- end }}
{{- with .tokenLabel }}
token_label = {{ . | toJson }}
{{- end }}
key_label = {{ .keyLabel | toJson }}
pin_file = "/etc/kms/pkcs11/pin"
{{- end }}
{{- end }}
{{- end }}
{{- range $i, $previous := .Values.rootKey.previous }}

# A root key of an earlier rotation: unseals only, until the leader has re-sealed its material.
[[previous_root_keys]]
provider = {{ $.Values.rootKey.provider | toJson }}
{{- if eq $.Values.rootKey.provider "file" }}
path = "/run/kms/previous-root-{{ $i }}.key"
{{- else if eq $.Values.rootKey.provider "env" }}
variable = "KMS_PREVIOUS_ROOT_KEY_{{ $i }}"
{{- else }}
{{- with $.Values.rootKey.pkcs11 }}
module = {{ .module | toJson }}
{{- if not (kindIs "invalid" .slot) }}
slot = {{ int .slot }}
{{- end }}
{{- with .tokenLabel }}
token_label = {{ . | toJson }}
{{- end }}
pin_file = "/etc/kms/pkcs11/pin"
{{- end }}
key_label = {{ $previous | toJson }}
{{- end }}
{{- end }}
{{- range .Values.aws.credentials }}

[aws_credentials.{{ .accessKeyId | toJson }}]
secret_access_key = {{ .secretAccessKey | toJson }}
principal = {{ .principal | toJson }}
{{- end }}
{{- end -}}
