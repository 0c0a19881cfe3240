// upgradewatch production deployment: one Flex Consumption function app running
// the Go custom handler, its storage account (state tables + host storage)
// reachable only from the app's virtual network, a user-assigned identity
// instead of any key (no shared keys, no basic-auth publishing), Application
// Insights, and an Event Grid system topic + subscription per watched AKS
// cluster.
//
// Deploy twice: first with subscribeEvents=false, then publish the code (the
// AksEvents function must exist before Event Grid can validate the endpoint),
// then again with subscribeEvents=true. See README.md.

targetScope = 'resourceGroup'

@description('Base name for every resource (lowercase letters, digits, hyphens).')
@minLength(3)
@maxLength(20)
param name string = 'upgradewatch'

@description('Region for the app and its storage. Must offer Flex Consumption.')
param location string = resourceGroup().location

@description('Resource IDs of the AKS clusters to watch (any resource group or subscription in this tenant).')
param clusterIds array = []

@description('Create the Event Grid subscriptions. Leave false until the function code is published.')
param subscribeEvents bool = false

@description('Dead-letter undeliverable events to the eventgrid-deadletter container.')
param deadLetterEnabled bool = true

@description('Event Grid output schema. The handler accepts both.')
@allowed([
  'EventGridSchema'
  'CloudEventSchemaV1_0'
])
param eventDeliverySchema string = 'EventGridSchema'

@description('Also create the subscription-scope ARN topics (ScheduledEventEmitted, Resources.CreatedOrUpdated) for this subscription.')
param watchSubscriptionEvents bool = false

@description('Storage redundancy.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_ZRS'

@description('Flex Consumption scale-out limit.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption instance size.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('UPGRADEWATCH_TABLE_PREFIX: prefix for the handler\'s table names.')
param tablePrefix string = ''

@description('UPGRADEWATCH_LOG_LEVEL.')
@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
param logLevel string = 'info'

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('How the app reaches its storage account (state tables, host storage, deployment package). privateEndpoint: private endpoints for blob, queue and table in a virtual network the app is integrated with, public network access disabled. serviceEndpoint: the app\'s integration subnet, with a Microsoft.Storage service endpoint, is the only network the storage firewall (default Deny) lets in. public: any network may try (Entra ID is still required); for trials only.')
@allowed([
  'privateEndpoint'
  'serviceEndpoint'
  'public'
])
param storageNetworkAccess string = 'privateEndpoint'

@description('Address space of the virtual network created unless storageNetworkAccess is public.')
param vnetAddressPrefix string = '10.42.0.0/16'

@description('Subnet the app is integrated with (delegated to Microsoft.App/environments, as Flex Consumption requires).')
param appSubnetPrefix string = '10.42.0.0/24'

@description('Subnet of the storage private endpoints (storageNetworkAccess privateEndpoint).')
param privateEndpointSubnetPrefix string = '10.42.1.0/24'

@description('Client ID of the Microsoft Entra ID app registration people sign in to the dashboard with (docs/dashboard.md). Empty: App Service Authentication stays off and the dashboard answers 401 to every request from outside the app.')
param dashboardClientId string = ''

@description('Tenant of that app registration.')
param dashboardTenantId string = tenant().tenantId

param tags object = {
  app: 'upgradewatch'
}

// ---------------------------------------------------------------------------
// Names

var token = uniqueString(resourceGroup().id, name)
var storageName = take('st${replace(toLower(name), '-', '')}${token}', 24)
// Dead letters live in an account of their own: Event Grid writes them with a
// user-assigned identity, which no storage firewall lets through, and the
// state account must not be opened for that.
var deadLetterStorageName = take('stdl${token}${replace(toLower(name), '-', '')}', 24)
var vnetName = 'vnet-${name}-${token}'
var vnetEnabled = storageNetworkAccess != 'public'
var usePrivateEndpoints = storageNetworkAccess == 'privateEndpoint'
var appSubnetName = 'app'
var privateEndpointSubnetName = 'private-endpoints'
var appSubnetId = resourceId('Microsoft.Network/virtualNetworks/subnets', vnetName, appSubnetName)
var privateEndpointSubnetId = resourceId('Microsoft.Network/virtualNetworks/subnets', vnetName, privateEndpointSubnetName)
// The storage services the app uses: host (blob, queue), state (table).
var storageServices = [
  'blob'
  'queue'
  'table'
]
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletter'
var eventFunctionName = 'AksEvents'

// Built-in role definition IDs.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// What the app identity needs on the storage account:
// blob owner for the host (keys, leases, timers) and the Flex deployment package,
// queue contributor for host internals, table contributor for upgradewatch state.
var appStorageRoles = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

// ---------------------------------------------------------------------------
// Identities

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${name}-${token}'
  location: location
  tags: tags
}

// Event Grid writes dead letters with its own identity, because shared-key
// access to the storage account is disabled.
resource eventGridIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${name}-eventgrid-${token}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------
// Network: the app's outbound traffic goes through a virtual network, the only
// place its storage account answers (storageNetworkAccess).

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = if (vnetEnabled) {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        vnetAddressPrefix
      ]
    }
    subnets: concat(
      [
        {
          name: appSubnetName
          properties: {
            addressPrefix: appSubnetPrefix
            delegations: [
              {
                name: 'flex-consumption'
                properties: {
                  serviceName: 'Microsoft.App/environments'
                }
              }
            ]
            serviceEndpoints: usePrivateEndpoints
              ? []
              : [
                  {
                    service: 'Microsoft.Storage'
                  }
                ]
            // The app also calls ARM, Event Grid and the notification sinks
            // on the internet. Attach a NAT gateway instead for fixed egress.
            defaultOutboundAccess: true
          }
        }
      ],
      usePrivateEndpoints
        ? [
            {
              name: privateEndpointSubnetName
              properties: {
                addressPrefix: privateEndpointSubnetPrefix
                privateEndpointNetworkPolicies: 'Disabled'
              }
            }
          ]
        : []
    )
  }
}

// ---------------------------------------------------------------------------
// Storage

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    // Reachable only from the app's virtual network (storageNetworkAccess).
    publicNetworkAccess: usePrivateEndpoints ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
      ipRules: []
      virtualNetworkRules: storageNetworkAccess == 'serviceEndpoint'
        ? [
            {
              id: appSubnetId
              action: 'Allow'
            }
          ]
        : []
    }
  }
  dependsOn: [
    vnet
  ]

  resource blobService 'blobServices' = {
    name: 'default'

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }
}

// Private endpoints for blob, queue and table, with the private DNS zones that
// make the account's usual host names resolve to them inside the network.
resource storageDnsZones 'Microsoft.Network/privateDnsZones@2020-06-01' = [
  for service in storageServices: if (usePrivateEndpoints) {
    name: 'privatelink.${service}.${environment().suffixes.storage}'
    location: 'global'
    tags: tags
  }
]

resource storageDnsLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [
  for (service, i) in storageServices: if (usePrivateEndpoints) {
    parent: storageDnsZones[i]
    name: 'link-${name}'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: {
        id: resourceId('Microsoft.Network/virtualNetworks', vnetName)
      }
    }
    dependsOn: [
      vnet
    ]
  }
]

resource storagePrivateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [
  for service in storageServices: if (usePrivateEndpoints) {
    name: 'pe-${storageName}-${service}'
    location: location
    tags: tags
    properties: {
      subnet: {
        id: privateEndpointSubnetId
      }
      privateLinkServiceConnections: [
        {
          name: service
          properties: {
            privateLinkServiceId: storage.id
            groupIds: [
              service
            ]
          }
        }
      ]
    }
    dependsOn: [
      vnet
    ]
  }
]

resource storageDnsGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [
  for (service, i) in storageServices: if (usePrivateEndpoints) {
    parent: storagePrivateEndpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: service
          properties: {
            privateDnsZoneId: storageDnsZones[i].id
          }
        }
      ]
    }
  }
]

// Undeliverable events only. Event Grid can write to a storage firewall only
// with a system-assigned identity of each topic, so this account keeps public
// network access; shared keys are off and only the Event Grid identity may
// write to it.
resource deadLetterStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: deadLetterStorageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
  }

  resource blobService 'blobServices' = {
    name: 'default'

    resource deadLetterContainer 'containers' = {
      name: deadLetterContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }
}

resource appStorageRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in appStorageRoles: {
    name: guid(storage.id, appIdentity.id, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: appIdentity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource deadLetterRoleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterStorage::blobService::deadLetterContainer.id, eventGridIdentity.id, roles.storageBlobDataContributor)
  scope: deadLetterStorage::blobService::deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: eventGridIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------------------
// Monitoring: Entra-only ingestion, so the connection string is not a credential.

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${name}-${token}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${name}-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

resource appInsightsRoleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appIdentity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------------------
// Function app (Flex Consumption, Linux, custom handler)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${name}-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-${name}-${token}'
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${appIdentity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // VNet integration: the app reaches its storage through this subnet.
    virtualNetworkSubnetId: vnetEnabled ? appSubnetId : null
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: appIdentity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // Unverified: the Flex runtime object for custom handlers. Check with
      // `az functionapp list-flexconsumption-runtimes --location <region> --runtime custom`.
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
  dependsOn: [
    appStorageRoleAssignments
    storage::blobService::deploymentContainer
    storageDnsGroups
    storageDnsLinks
  ]

  // No basic-auth publishing: deployments authenticate with Entra ID
  // (`func azure functionapp publish` and `az functionapp deployment` do).
  resource scmBasicAuth 'basicPublishingCredentialsPolicies' = {
    name: 'scm'
    properties: {
      allow: false
    }
  }

  resource ftpBasicAuth 'basicPublishingCredentialsPolicies' = {
    name: 'ftp'
    properties: {
      allow: false
    }
  }

  // Flex does not accept FUNCTIONS_WORKER_RUNTIME; the runtime comes from functionAppConfig.
  resource appSettings 'config' = {
    name: 'appsettings'
    properties: {
      AzureWebJobsStorage__accountName: storage.name
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: appIdentity.properties.clientId
      APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${appIdentity.properties.clientId};Authorization=AAD'
      UPGRADEWATCH_STORAGE: 'AzureWebJobsStorage'
      UPGRADEWATCH_TABLE_PREFIX: tablePrefix
      UPGRADEWATCH_LOG_LEVEL: logLevel
      UPGRADEWATCH_MAX_BODY_BYTES: '1048576'
      UPGRADEWATCH_STATE_CACHE: '2000'
      UPGRADEWATCH_STORAGE_TIMEOUT: '10s'
    }
    dependsOn: [
      appInsightsRoleAssignment
    ]
  }

  // App Service Authentication (Microsoft Entra ID) in front of the
  // dashboard: people sign in; the platform adds X-MS-CLIENT-PRINCIPAL (and
  // strips a client's own), which the handler requires of every dashboard
  // request from outside the app. The machine routes keep their own keys
  // (function keys, Event Grid's system key, secure webhook and cluster
  // tokens) and are excluded from the sign-in redirect.
  resource dashboardAuth 'config' = if (!empty(dashboardClientId)) {
    name: 'authsettingsV2'
    properties: {
      platform: {
        enabled: true
        runtimeVersion: '~1'
      }
      globalValidation: {
        requireAuthentication: true
        unauthenticatedClientAction: 'RedirectToLoginPage'
        redirectToProvider: 'azureactivedirectory'
        excludedPaths: [
          '/api/clusters'
          '/api/clusters/*'
          '/api/findings'
          '/api/compliance'
          '/api/compliance/*'
          '/api/activitylog/alert'
          '/api/silences'
          '/api/silences/*'
          '/runtime/webhooks/*'
          '/admin/*'
        ]
      }
      httpSettings: {
        requireHttps: true
      }
      identityProviders: {
        azureActiveDirectory: {
          enabled: true
          registration: {
            clientId: dashboardClientId
            openIdIssuer: '${environment().authentication.loginEndpoint}${dashboardTenantId}/v2.0'
          }
          validation: {
            allowedAudiences: [
              'api://${dashboardClientId}'
              dashboardClientId
            ]
          }
        }
      }
      login: {
        tokenStore: {
          enabled: false
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Event Grid: one system topic per cluster, created in the cluster's own
// resource group and region.

var eventFunctionId = '${app.id}/functions/${eventFunctionName}'
var deadLetter = {
  enabled: deadLetterEnabled
  identityId: eventGridIdentity.id
  storageAccountId: deadLetterStorage.id
  containerName: deadLetterContainerName
}

module clusterTopics 'cluster-topic.bicep' = [
  for (clusterId, i) in clusterIds: {
    name: take('upgradewatch-aks-${i}-${uniqueString(clusterId)}', 64)
    scope: resourceGroup(split(clusterId, '/')[2], split(clusterId, '/')[4])
    params: {
      clusterName: last(split(clusterId, '/'))
      functionResourceId: eventFunctionId
      subscribe: subscribeEvents
      eventDeliverySchema: eventDeliverySchema
      deadLetter: deadLetter
      tags: tags
    }
    dependsOn: [
      deadLetterRoleAssignment
    ]
  }
]

module subscriptionTopics 'subscription-topics.bicep' = if (watchSubscriptionEvents) {
  name: take('upgradewatch-arn-${token}', 64)
  params: {
    functionResourceId: eventFunctionId
    activityFunctionResourceId: '${app.id}/functions/ActivityLog'
    subscribe: subscribeEvents
    eventDeliverySchema: eventDeliverySchema
    deadLetter: deadLetter
    tags: tags
  }
  dependsOn: [
    deadLetterRoleAssignment
  ]
}

// ---------------------------------------------------------------------------

output functionAppName string = app.name
output functionAppHostName string = app.properties.defaultHostName
output aksEventsFunctionId string = eventFunctionId
output storageAccountName string = storage.name
output deadLetterStorageAccountName string = deadLetterStorage.name
output appIdentityPrincipalId string = appIdentity.properties.principalId
output eventGridIdentityId string = eventGridIdentity.id
