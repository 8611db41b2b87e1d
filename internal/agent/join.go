package agent

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
)

// JoinToken composes the node join token: it names the cluster CA's hash so
// a joining agent can trust the server it reaches, as k3s's tokens do.
func JoinToken(caPEM []byte, secret string) string {
	sum := sha256.Sum256(caPEM)
	return "K10" + hex.EncodeToString(sum[:]) + "::server:" + secret
}

// JoinConfig builds the client config of an agent that joins server with
// token: it fetches the CA from /cacerts and checks it against the token's hash.
func JoinConfig(server, token string) (*rest.Config, []byte, error) {
	token = strings.TrimSpace(token) // as read from the token file, with its newline
	hash, ok := strings.CutPrefix(token, "K10")
	if i := strings.Index(hash, "::"); ok && i > 0 {
		hash = hash[:i]
	} else {
		return nil, nil, fmt.Errorf("token: want the contents of the server's <data-dir>/token (K10<ca-hash>::server:<secret>)")
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// Trust is established by the hash below, not by the TLS handshake.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	resp, err := hc.Get(strings.TrimSuffix(server, "/") + "/cacerts")
	if err != nil {
		return nil, nil, fmt.Errorf("fetch cluster CA from %s: %w", server, err)
	}
	defer resp.Body.Close()
	ca, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("fetch cluster CA from %s: status %d %v", server, resp.StatusCode, err)
	}
	sum := sha256.Sum256(ca)
	if hex.EncodeToString(sum[:]) != hash {
		return nil, nil, fmt.Errorf("the CA served by %s does not match the token's hash: wrong server or token", server)
	}
	return &rest.Config{Host: server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: ca}, QPS: agentQPS, Burst: 2 * agentQPS}, ca, nil
}

// ParseLabels parses --node-labels: k=v,k2=v2.
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--node-labels: %q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// ParseTaints parses --register-with-taints: key=value:Effect or key:Effect, comma-separated.
func ParseTaints(s string) ([]corev1.Taint, error) {
	var out []corev1.Taint
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		kv, effect, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("--register-with-taints: %q lacks :Effect", t)
		}
		switch corev1.TaintEffect(effect) {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			return nil, fmt.Errorf("--register-with-taints: unknown effect %q", effect)
		}
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)})
	}
	return out, nil
}

// agentQPS bounds an agent's API requests. Above the kubelet's default of 50:
// a node starting 100 pods at once makes a few writes for each (status,
// events), and skiff's API server takes them easily.
const agentQPS = 200
