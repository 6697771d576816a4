{{/* Names, labels and addresses shared by the templates. */}}

{{- define "kms.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The StatefulSet and client Service name. Short enough that "<name>-peers" and the pod
names still fit DNS labels. */}}
{{- define "kms.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The headless Service that gives every pod a stable DNS name. */}}
{{- define "kms.peers" -}}
{{- printf "%s-peers" (include "kms.fullname" .) -}}
{{- end -}}

{{- define "kms.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kms.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
kms/region: {{ .Values.region | quote }}
{{- end -}}

{{- define "kms.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kms.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kms.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kms.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kms.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* DNS name of pod <ordinal>: <fullname>-<ordinal>.<peers>.<namespace>.svc.<domain>. Call with
(list $ ordinal). */}}
{{- define "kms.podHost" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "kms.fullname" $root) (int (index . 1)) (include "kms.peers" $root) $root.Release.Namespace $root.Values.clusterDomain -}}
{{- end -}}

{{/* The Secret holding the node certificate. */}}
{{- define "kms.tlsSecret" -}}
{{- if .Values.tls.certManager.enabled -}}
{{- printf "%s-tls" (include "kms.fullname" .) -}}
{{- else -}}
{{- .Values.tls.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* Whether kmsd.toml holds secrets (AWS access keys) and so lives in a Secret. */}}
{{- define "kms.configIsSecret" -}}
{{- if .Values.aws.enabled -}}true{{- end -}}
{{- end -}}

{{/* Refuses value combinations that would render a region kmsd cannot run. */}}
{{- define "kms.validate" -}}
{{- if and (not .Values.tls.enabled) (not .Values.allowInsecurePlaintext) -}}
{{- fail "tls.enabled is false: kmsd refuses plaintext on the pod network. Enable TLS (tls.existingSecret or tls.certManager), or set allowInsecurePlaintext: true for a network private by other means." -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.certManager.enabled) (not .Values.tls.existingSecret) -}}
{{- fail "tls.enabled needs tls.existingSecret (tls.crt, tls.key, ca.crt) or tls.certManager.enabled" -}}
{{- end -}}
{{- if and .Values.tls.certManager.enabled (not .Values.tls.certManager.issuerRef.name) -}}
{{- fail "tls.certManager.enabled needs tls.certManager.issuerRef.name" -}}
{{- end -}}
{{- if and .Values.tls.certManager.enabled (not .Values.tls.enabled) -}}
{{- fail "tls.certManager.enabled needs tls.enabled: true" -}}
{{- end -}}
{{- if and (ne .Values.rootKey.provider "pkcs11") (not .Values.rootKey.existingSecret) -}}
{{- fail (printf "rootKey.provider %s needs rootKey.existingSecret: the Secret holding the region root key" .Values.rootKey.provider) -}}
{{- end -}}
{{- if eq .Values.rootKey.provider "pkcs11" -}}
{{- if or (not .Values.rootKey.pkcs11.module) (not .Values.rootKey.pkcs11.keyLabel) (not .Values.rootKey.pkcs11.pinSecret.name) -}}
{{- fail "rootKey.provider pkcs11 needs rootKey.pkcs11.module, keyLabel and pinSecret.name" -}}
{{- end -}}
{{- if and (kindIs "invalid" .Values.rootKey.pkcs11.slot) (not .Values.rootKey.pkcs11.tokenLabel) -}}
{{- fail "rootKey.provider pkcs11 needs rootKey.pkcs11.slot or tokenLabel" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.aws.enabled (not .Values.aws.credentials) -}}
{{- fail "aws.enabled needs at least one entry in aws.credentials: nobody could call the AWS endpoint" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled" -}}
{{- end -}}
{{- if and .Release.IsInstall (gt (int .Values.initialMembers) (int .Values.replicas)) -}}
{{- fail (printf "replicas (%d) must be at least initialMembers (%d) on the first install; scale down only after removing nodes from the region" (int .Values.replicas) (int .Values.initialMembers)) -}}
{{- end -}}
{{- end -}}

{{/* The health check of the probes: kubelet's gRPC probe in plaintext; with TLS, kmsctl against
the pod's own port (kubelet's gRPC probe cannot do TLS). */}}
{{- define "kms.healthProbe" -}}
{{- if .Values.tls.enabled -}}
exec:
  command:
    - /usr/local/bin/kmsctl
    - --endpoint
    - https://localhost:{{ int .Values.ports.grpc }}
    - --ca-bundle
    - /etc/kms/tls/ca.crt
    - health
timeoutSeconds: 5
{{- else -}}
grpc:
  port: {{ int .Values.ports.grpc }}
timeoutSeconds: 5
{{- end -}}
{{- end -}}
