// Subscription-scope Azure Resource Notifications (ARN) topics for the current
// subscription, delivering to the AksEvents function:
//   - ContainerServiceEventResources.ScheduledEventEmitted (AKS Communication
//     Manager: Scheduled/Started/Completed/Failed/Cancelled maintenance)
//   - Resources.CreatedOrUpdated, filtered to managed clusters (channel and
//     node image changes; coverage of managedClusters is unverified)
// and the subscription's activity log (Microsoft.Resources.* events, filtered
// to AKS operations), delivering to the ActivityLog function.
//
// System topics are resource-group resources even when their source is a
// subscription, so this file targets a resource group: deploy it once into any
// resource group of each subscription that holds watched clusters. main.bicep
// includes it for its own subscription when watchSubscriptionEvents=true.
// The deployer needs Microsoft.ResourceNotifications/systemTopics/
// subscribeToContainerServiceEventResources/action and .../subscribeToResources/action.

targetScope = 'resourceGroup'

@description('Resource ID of the AksEvents function: <function app id>/functions/AksEvents.')
param functionResourceId string

@description('Create the event subscriptions (needs the function code published).')
param subscribe bool

@allowed([
  'EventGridSchema'
  'CloudEventSchemaV1_0'
])
param eventDeliverySchema string = 'EventGridSchema'

@description('Dead-letter settings: enabled, identityId, storageAccountId, containerName.')
param deadLetter object

@description('Also subscribe to Resources.CreatedOrUpdated for managed clusters.')
param includeResourceWrites bool = true

@description('Resource ID of the ActivityLog function; empty: no activity-log subscription.')
param activityFunctionResourceId string = ''

param tags object = {}

var scheduledEventsTopic = {
  name: 'arn-aks-scheduled-events'
  topicType: 'Microsoft.ResourceNotifications.ContainerServiceEventResources'
  eventTypes: [
    'Microsoft.ResourceNotifications.ContainerServiceEventResources.ScheduledEventEmitted'
  ]
  advancedFilters: []
  destinationId: functionResourceId
}

var resourcesTopic = {
  name: 'arn-resources'
  topicType: 'Microsoft.ResourceNotifications.Resources'
  eventTypes: [
    'Microsoft.ResourceNotifications.Resources.CreatedOrUpdated'
  ]
  // Without this every write in the subscription would be delivered.
  // Event Grid string filters are case-insensitive.
  advancedFilters: [
    {
      operatorType: 'StringIn'
      key: 'data.resourceInfo.type'
      values: [
        'Microsoft.ContainerService/managedClusters'
      ]
    }
  ]
  destinationId: functionResourceId
}

// The activity log: who wrote, deleted, aborted or upgraded what. Only AKS
// operations are delivered (StringContains is case-insensitive, and the
// operation names vary in case).
var activityTopic = {
  name: 'aks-activity-log'
  topicType: 'Microsoft.Resources.Subscriptions'
  eventTypes: [
    'Microsoft.Resources.ResourceWriteSuccess'
    'Microsoft.Resources.ResourceWriteFailure'
    'Microsoft.Resources.ResourceWriteCancel'
    'Microsoft.Resources.ResourceDeleteSuccess'
    'Microsoft.Resources.ResourceDeleteFailure'
    'Microsoft.Resources.ResourceDeleteCancel'
    'Microsoft.Resources.ResourceActionSuccess'
    'Microsoft.Resources.ResourceActionFailure'
    'Microsoft.Resources.ResourceActionCancel'
  ]
  advancedFilters: [
    {
      operatorType: 'StringContains'
      key: 'data.operationName'
      values: [
        'Microsoft.ContainerService/managedClusters'
      ]
    }
  ]
  destinationId: activityFunctionResourceId
}

var topics = concat([scheduledEventsTopic], includeResourceWrites ? [resourcesTopic] : [], empty(activityFunctionResourceId) ? [] : [activityTopic])

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

resource systemTopics 'Microsoft.EventGrid/systemTopics@2022-06-15' = [
  for t in topics: {
    name: '${t.name}-${uniqueString(subscription().id)}'
    location: 'global'
    tags: tags
    identity: deadLetter.enabled ? topicIdentity : null
    properties: {
      source: subscription().id
      topicType: t.topicType
    }
  }
]

resource eventSubscriptions 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = [
  for (t, i) in topics: if (subscribe) {
    parent: systemTopics[i]
    name: 'upgradewatch'
    properties: {
      destination: {
        endpointType: 'AzureFunction'
        properties: {
          resourceId: t.destinationId
          maxEventsPerBatch: 1
          preferredBatchSizeInKilobytes: 64
        }
      }
      eventDeliverySchema: eventDeliverySchema
      filter: {
        includedEventTypes: t.eventTypes
        advancedFilters: t.advancedFilters
      }
      retryPolicy: {
        maxDeliveryAttempts: 30
        eventTimeToLiveInMinutes: 1440
      }
      deadLetterWithResourceIdentity: deadLetter.enabled ? deadLetterConfig : null
    }
  }
]

output topicIds array = [for (t, i) in topics: systemTopics[i].id]
