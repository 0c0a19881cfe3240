// Event Grid system topic for one AKS cluster and the subscription that
// delivers its events to the AksEvents function. Deployed by main.bicep into
// the cluster's resource group. Azure allows one system topic per source: if
// the cluster already has one, subscribe on that topic instead (README.md).

targetScope = 'resourceGroup'

@description('Name of the managed cluster in this resource group.')
param clusterName string

@description('Resource ID of the AksEvents function: <function app id>/functions/AksEvents.')
param functionResourceId string

@description('Create the event subscription (needs the function code published).')
param subscribe bool

@allowed([
  'EventGridSchema'
  'CloudEventSchemaV1_0'
])
param eventDeliverySchema string = 'EventGridSchema'

@description('Dead-letter settings: enabled, identityId, storageAccountId, containerName.')
param deadLetter object

param tags object = {}

// The six event types AKS publishes on its system topic.
var aksEventTypes = [
  'Microsoft.ContainerService.NewKubernetesVersionAvailable'
  'Microsoft.ContainerService.ClusterSupportEnding'
  'Microsoft.ContainerService.ClusterSupportEnded'
  'Microsoft.ContainerService.NodePoolRollingStarted'
  'Microsoft.ContainerService.NodePoolRollingSucceeded'
  'Microsoft.ContainerService.NodePoolRollingFailed'
]

var deadLetterConfig = {
  identity: {
    type: 'UserAssigned'
    userAssignedIdentity: deadLetter.identityId
  }
  deadLetterDestination: {
    endpointType: 'StorageBlob'
    properties: {
      resourceId: deadLetter.storageAccountId
      blobContainerName: deadLetter.containerName
    }
  }
}

// The topic carries the identity Event Grid uses to write dead letters.
var topicIdentity = {
  type: 'UserAssigned'
  userAssignedIdentities: {
    '${deadLetter.identityId}': {}
  }
}

resource cluster 'Microsoft.ContainerService/managedClusters@2024-09-01' existing = {
  name: clusterName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: take('${replace(clusterName, '_', '-')}-upgradewatch', 128)
  location: cluster.location
  tags: tags
  identity: deadLetter.enabled ? topicIdentity : null
  properties: {
    source: cluster.id
    topicType: 'Microsoft.ContainerService.ManagedClusters'
  }
}

resource eventSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (subscribe) {
  parent: topic
  name: 'upgradewatch'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: functionResourceId
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: eventDeliverySchema
    filter: {
      includedEventTypes: aksEventTypes
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: deadLetter.enabled ? deadLetterConfig : null
  }
}

output topicId string = topic.id
