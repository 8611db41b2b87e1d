package printers

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// printerTable lists every printed type: its kind, columns and cell function.
// To print a new type, add one line here (and its columns and cells).
var printerTable = []printer{
	// core/v1
	entry(corev1.SchemeGroupVersion.WithKind("Namespace"), namespaceColumns, namespaceCells),
	withConditions(entry(corev1.SchemeGroupVersion.WithKind("Pod"), podColumns, podCells), podConditions),
	entry(corev1.SchemeGroupVersion.WithKind("Node"), nodeColumns, nodeCells),
	entry(corev1.SchemeGroupVersion.WithKind("Service"), serviceColumns, serviceCells),
	entry(corev1.SchemeGroupVersion.WithKind("Endpoints"), endpointsColumns, endpointsCells),
	entry(corev1.SchemeGroupVersion.WithKind("ConfigMap"), configMapColumns, configMapCells),
	entry(corev1.SchemeGroupVersion.WithKind("Secret"), secretColumns, secretCells),
	entry(corev1.SchemeGroupVersion.WithKind("ServiceAccount"), serviceAccountColumns, serviceAccountCells),
	entry(corev1.SchemeGroupVersion.WithKind("Event"), eventColumns, eventCells),
	entry(corev1.SchemeGroupVersion.WithKind("ReplicationController"), replicationControllerColumns, replicationControllerCells),

	// apps/v1
	entry(appsv1.SchemeGroupVersion.WithKind("Deployment"), deploymentColumns, deploymentCells),
	entry(appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), replicaSetColumns, replicaSetCells),

	// batch/v1
	entry(batchv1.SchemeGroupVersion.WithKind("Job"), jobColumns, jobCells),
	entry(batchv1.SchemeGroupVersion.WithKind("CronJob"), cronJobColumns, cronJobCells),

	// coordination.k8s.io/v1
	entry(coordinationv1.SchemeGroupVersion.WithKind("Lease"), leaseColumns, leaseCells),

	// discovery.k8s.io/v1
	entry(discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"), endpointSliceColumns, endpointSliceCells),

	// networking.k8s.io/v1
	entry(networkingv1.SchemeGroupVersion.WithKind("Ingress"), ingressColumns, ingressCells),
	entry(networkingv1.SchemeGroupVersion.WithKind("IngressClass"), ingressClassColumns, ingressClassCells),
}
