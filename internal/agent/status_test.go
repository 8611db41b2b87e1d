package agent

import (
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A status the agent posted, read back through the API (JSON: whole
// seconds), must equal the status the next sync computes, or every sync of a
// running pod writes it again.
func TestPodStatusSurvivesTheAPIRoundTrip(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}}}
	view := containerView{name: "main", image: "busybox", ready: true, started: true, latest: &runtimeapi.ContainerStatus{
		Id: "c1", State: runtimeapi.ContainerState_CONTAINER_RUNNING, StartedAt: started.UnixNano(),
		Metadata: &runtimeapi.ContainerMetadata{Name: "main"}}}
	now := started.Add(time.Second)
	posted := podStatus(pod, true, nil, []containerView{view}, "10.0.0.1", now)

	raw, err := json.Marshal(posted)
	if err != nil {
		t.Fatal(err)
	}
	var readBack corev1.PodStatus
	if err := json.Unmarshal(raw, &readBack); err != nil {
		t.Fatal(err)
	}
	pod.Status = readBack
	next := podStatus(pod, true, nil, []containerView{view}, "10.0.0.1", now.Add(1500*time.Millisecond))
	if !apiequality.Semantic.DeepEqual(readBack, next) {
		t.Errorf("the next sync's status differs from the one read back:\nread back %+v\nnext      %+v", readBack, next)
	}
}
