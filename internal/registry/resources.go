package registry

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func core(kind string) schema.GroupVersionKind { return corev1.SchemeGroupVersion.WithKind(kind) }

// The served resources. Defaults and validation are attached in defaults.go
// and validation.go.
var (
	Namespaces = register(&Resource{GVK: core("Namespace"), Plural: "namespaces", ShortNames: []string{"ns"},
		Subresources: []string{"status", "finalize"}, NameIsDNSLabel: true, ResetStatusOnCreate: true,
		Fields: func(o runtime.Object) fields.Set {
			return fields.Set{"status.phase": string(o.(*corev1.Namespace).Status.Phase)}
		}})
	Pods = register(&Resource{GVK: core("Pod"), Plural: "pods", ShortNames: []string{"po"}, Categories: []string{"all"},
		Namespaced: true, Subresources: []string{"status", "binding", "eviction", "log", "exec", "attach", "portforward"}, ResetStatusOnCreate: true,
		Fields: func(o runtime.Object) fields.Set {
			p := o.(*corev1.Pod)
			return fields.Set{
				"spec.nodeName": p.Spec.NodeName, "spec.restartPolicy": string(p.Spec.RestartPolicy),
				"spec.schedulerName": p.Spec.SchedulerName, "spec.serviceAccountName": p.Spec.ServiceAccountName,
				"spec.hostNetwork": boolString(p.Spec.HostNetwork),
				"status.phase":     string(p.Status.Phase), "status.podIP": p.Status.PodIP,
				"status.nominatedNodeName": p.Status.NominatedNodeName,
			}
		}})
	Nodes = register(&Resource{GVK: core("Node"), Plural: "nodes", ShortNames: []string{"no"},
		Subresources: []string{"status"},
		Fields: func(o runtime.Object) fields.Set {
			return fields.Set{"spec.unschedulable": boolString(o.(*corev1.Node).Spec.Unschedulable)}
		}})
	Services = register(&Resource{GVK: core("Service"), Plural: "services", ShortNames: []string{"svc"}, Categories: []string{"all"},
		Namespaced: true, Subresources: []string{"status"}, NameIsDNSLabel: true, ResetStatusOnCreate: true,
		Fields: func(o runtime.Object) fields.Set {
			s := o.(*corev1.Service)
			return fields.Set{"spec.clusterIP": s.Spec.ClusterIP, "spec.type": string(s.Spec.Type)}
		}})
	Endpoints  = register(&Resource{GVK: core("Endpoints"), Plural: "endpoints", Singular: "endpoints", ShortNames: []string{"ep"}, Namespaced: true})
	ConfigMaps = register(&Resource{GVK: core("ConfigMap"), Plural: "configmaps", ShortNames: []string{"cm"}, Namespaced: true})
	Secrets    = register(&Resource{GVK: core("Secret"), Plural: "secrets", Namespaced: true,
		Fields: func(o runtime.Object) fields.Set { return fields.Set{"type": string(o.(*corev1.Secret).Type)} }})
	ServiceAccounts = register(&Resource{GVK: core("ServiceAccount"), Plural: "serviceaccounts", ShortNames: []string{"sa"}, Namespaced: true})
	Events          = register(&Resource{GVK: core("Event"), Plural: "events", ShortNames: []string{"ev"}, Namespaced: true,
		Fields: func(o runtime.Object) fields.Set {
			e := o.(*corev1.Event)
			return fields.Set{
				"involvedObject.kind": e.InvolvedObject.Kind, "involvedObject.namespace": e.InvolvedObject.Namespace,
				"involvedObject.name": e.InvolvedObject.Name, "involvedObject.uid": string(e.InvolvedObject.UID),
				"involvedObject.apiVersion": e.InvolvedObject.APIVersion, "involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
				"involvedObject.fieldPath": e.InvolvedObject.FieldPath, "reason": e.Reason, "reportingComponent": e.ReportingController,
				"source": e.Source.Component, "type": e.Type,
			}
		}})
	ReplicationControllers = register(&Resource{GVK: core("ReplicationController"), Plural: "replicationcontrollers", ShortNames: []string{"rc"},
		Categories: []string{"all"}, Namespaced: true, Subresources: []string{"status", "scale"}, ResetStatusOnCreate: true,
		Fields: func(o runtime.Object) fields.Set {
			return fields.Set{"status.replicas": itoa(o.(*corev1.ReplicationController).Status.Replicas)}
		}})

	Deployments = register(&Resource{GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Plural: "deployments", ShortNames: []string{"deploy"},
		Categories: []string{"all"}, Namespaced: true, Subresources: []string{"status", "scale"}, ResetStatusOnCreate: true})
	ReplicaSets = register(&Resource{GVK: appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), Plural: "replicasets", ShortNames: []string{"rs"},
		Categories: []string{"all"}, Namespaced: true, Subresources: []string{"status", "scale"}, ResetStatusOnCreate: true,
		Fields: func(o runtime.Object) fields.Set {
			return fields.Set{"status.replicas": itoa(o.(*appsv1.ReplicaSet).Status.Replicas)}
		}})

	Jobs = register(&Resource{GVK: batchv1.SchemeGroupVersion.WithKind("Job"), Plural: "jobs", Categories: []string{"all"},
		Namespaced: true, Subresources: []string{"status"}, ResetStatusOnCreate: true,
		Fields: func(o runtime.Object) fields.Set {
			return fields.Set{"status.successful": itoa(o.(*batchv1.Job).Status.Succeeded)}
		}})
	CronJobs = register(&Resource{GVK: batchv1.SchemeGroupVersion.WithKind("CronJob"), Plural: "cronjobs", ShortNames: []string{"cj"},
		Categories: []string{"all"}, Namespaced: true, Subresources: []string{"status"}, ResetStatusOnCreate: true})

	Leases         = register(&Resource{GVK: coordinationv1.SchemeGroupVersion.WithKind("Lease"), Plural: "leases", Namespaced: true})
	EndpointSlices = register(&Resource{GVK: discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"), Plural: "endpointslices", Namespaced: true})
	Ingresses      = register(&Resource{GVK: networkingv1.SchemeGroupVersion.WithKind("Ingress"), Plural: "ingresses", ShortNames: []string{"ing"},
		Namespaced: true, Subresources: []string{"status"}, ResetStatusOnCreate: true})
	IngressClasses = register(&Resource{GVK: networkingv1.SchemeGroupVersion.WithKind("IngressClass"), Plural: "ingressclasses"})
)

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func itoa(i int32) string {
	return fieldsItoa(int64(i))
}
