package local.ketamine.sandbox;

import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.RequestValidatingInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.Meta;
import org.hl7.fhir.r4.model.Observation;
import org.hl7.fhir.r4.model.Patient;
import org.hl7.fhir.r5.utils.validation.constants.BestPracticeWarningLevel;

/** The FHIR endpoint: HAPI's JPA resource providers plus strict request validation. */
public class SandboxFhirServer extends RestfulServer {

	static final int DEFAULT_PAGE_SIZE = 50;
	static final int MAX_PAGE_SIZE = 1000;

	private final transient ResourceProviderFactory resourceProviders;
	private final transient JpaSystemProvider<Bundle, Meta> systemProvider;
	private final transient IFhirSystemDao<Bundle, Meta> systemDao;
	private final transient JpaStorageSettings storageSettings;
	private final transient ISearchParamRegistry searchParamRegistry;
	private final transient IValidationSupport jpaValidationSupport;
	private final transient DatabaseBackedPagingProvider pagingProvider;
	private final transient BulkDataExportProvider bulkExportProvider;

	public SandboxFhirServer(
			FhirContext fhirContext,
			ResourceProviderFactory resourceProviders,
			JpaSystemProvider<Bundle, Meta> systemProvider,
			IFhirSystemDao<Bundle, Meta> systemDao,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport jpaValidationSupport,
			DatabaseBackedPagingProvider pagingProvider,
			BulkDataExportProvider bulkExportProvider) {
		super(fhirContext);
		this.resourceProviders = resourceProviders;
		this.systemProvider = systemProvider;
		this.systemDao = systemDao;
		this.storageSettings = storageSettings;
		this.searchParamRegistry = searchParamRegistry;
		this.jpaValidationSupport = jpaValidationSupport;
		this.pagingProvider = pagingProvider;
		this.bulkExportProvider = bulkExportProvider;
	}

	@Override
	protected void initialize() {
		setDefaultResponseEncoding(EncodingEnum.JSON);
		setDefaultPrettyPrint(false);

		pagingProvider.setDefaultPageSize(DEFAULT_PAGE_SIZE);
		pagingProvider.setMaximumPageSize(MAX_PAGE_SIZE);
		setPagingProvider(pagingProvider);

		// One JPA-backed provider per R4 resource type, plus system level operations
		// (transaction/batch, $expunge, history) and Bulk Data $export.
		registerProviders(resourceProviders.createProviders());
		registerProvider(systemProvider);
		registerProvider(bulkExportProvider);

		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				this, systemDao, storageSettings, searchParamRegistry, jpaValidationSupport);
		capabilities.setImplementationDescription("HAPI FHIR R4 JPA sandbox (integration tests)");
		setServerConformanceProvider(capabilities);

		if (!bulkLoad()) {
			FhirInstanceValidator validatorModule = newBaseR4Validator(getFhirContext());
			RequestValidatingInterceptor requestValidator = new RequestValidatingInterceptor();
			requestValidator.addValidatorModule(validatorModule);
			requestValidator.setFailOnSeverity(ResultSeverityEnum.ERROR);
			registerInterceptor(requestValidator);
			warmUpInBackground(validatorModule);
		}
	}

	/**
	 * SANDBOX_BULK_LOAD=1: a sandbox for loading a large generated population (the population
	 * benchmark's own): no request validation (validating each resource was most of the load
	 * time), HAPI's mass ingestion mode and no history rows (SandboxApplication). The tests'
	 * sandbox never sets it.
	 */
	static boolean bulkLoad() {
		return "1".equals(System.getenv().getOrDefault("SANDBOX_BULK_LOAD", "0").trim());
	}

	/** Validator against the base R4 specification only (no stored profiles, no IGs). */
	static FhirInstanceValidator newBaseR4Validator(FhirContext ctx) {
		ValidationSupportChain chain = new ValidationSupportChain(
				new DefaultProfileValidationSupport(ctx),
				new InMemoryTerminologyServerValidationSupport(ctx),
				new CommonCodeSystemsTerminologyService(ctx),
				new SnapshotGeneratingValidationSupport(ctx));
		FhirInstanceValidator validator = new FhirInstanceValidator(chain);
		// Base R4 only: a meta.profile we do not hold (e.g. US Core) is a warning, not a 422.
		validator.setErrorForUnknownProfiles(false);
		// No "best practice" warnings (dom-6 narrative, obs-6 performer...) in OperationOutcomes.
		validator.setBestPracticeWarningLevel(BestPracticeWarningLevel.Ignore);
		return validator;
	}

	/** Loads the R4 StructureDefinitions now so the first real write is not slow. */
	private void warmUpInBackground(FhirInstanceValidator validatorModule) {
		Thread warmUp = new Thread(
				() -> {
					FhirValidator validator = getFhirContext().newValidator();
					validator.registerValidatorModule(validatorModule);
					validator.validateWithResult(new Patient());
					validator.validateWithResult(new Observation());
				},
				"validator-warm-up");
		warmUp.setDaemon(true);
		warmUp.start();
	}
}
