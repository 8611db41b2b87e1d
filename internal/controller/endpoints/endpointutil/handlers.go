package endpointutil

import (
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// AddServiceAndPodHandlers wires the informer handlers both controllers
// share: a Service event enqueues that Service's key (ServiceHandler), a pod
// event the keys of the Services selecting the pod (PodHandler). Handlers
// for the objects each controller writes are its own.
func AddServiceAndPodHandlers(svcs coreinformers.ServiceInformer, pods coreinformers.PodInformer, enqueue func(key string)) {
	// AddEventHandler fails only on a stopped informer, and these have not
	// been started yet.
	_, _ = svcs.Informer().AddEventHandler(ServiceHandler(enqueue))
	_, _ = pods.Informer().AddEventHandler(PodHandler(svcs.Lister(), enqueue))
}

// ServiceHandler returns informer handlers that enqueue the key of every
// Service added, updated or deleted.
func ServiceHandler(enqueue func(key string)) cache.ResourceEventHandler {
	add := EnqueueKey(enqueue)
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, obj any) { add(obj) },
		DeleteFunc: add,
	}
}

// EnqueueKey returns a handler enqueueing an object's namespace/name key,
// tombstones included. For a Service, or an Endpoints object named after
// its Service, that is the Service's key.
func EnqueueKey(enqueue func(key string)) func(obj any) {
	return func(obj any) {
		if k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			enqueue(k)
		}
	}
}
