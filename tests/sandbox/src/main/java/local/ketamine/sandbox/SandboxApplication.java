package local.ketamine.sandbox;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.narrative.INarrativeGenerator;
import ca.uhn.fhir.narrative2.NullNarrativeGenerator;
import com.zaxxer.hikari.HikariDataSource;
import jakarta.persistence.EntityManagerFactory;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.Banner;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.boot.autoconfigure.context.PropertyPlaceholderAutoConfiguration;
import org.springframework.boot.autoconfigure.web.embedded.EmbeddedWebServerFactoryCustomizerAutoConfiguration;
import org.springframework.boot.autoconfigure.web.servlet.ServletWebServerFactoryAutoConfiguration;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * Test-only launcher: a HAPI FHIR JPA server (FHIR R4) on an in-memory H2 database.
 *
 * <p>Only the Spring Boot pieces for an embedded Tomcat are auto-configured; all HAPI
 * wiring (storage, batch2 jobs, bulk export) comes from HAPI's own configuration classes.
 */
@SpringBootConfiguration
@ImportAutoConfiguration({
	PropertyPlaceholderAutoConfiguration.class,
	ServletWebServerFactoryAutoConfiguration.class,
	EmbeddedWebServerFactoryCustomizerAutoConfiguration.class
})
@Import({
	ThreadPoolFactoryConfig.class,
	// In-memory message channels; batch2 (bulk export, $expunge jobs) uses them for work chunks.
	SubscriptionChannelConfig.class,
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	SandboxFhirServer.class
})
public class SandboxApplication {

	private static final Logger LOG = LoggerFactory.getLogger(SandboxApplication.class);
	private static final long BATCH2_MAINTENANCE_MILLIS = 1_000L;

	public static void main(String[] args) {
		long startedAt = System.nanoTime();
		String port = System.getenv().getOrDefault("SANDBOX_PORT", "8080").trim();

		Map<String, Object> props = new HashMap<>();
		props.put("server.port", port);
		props.put("server.address", "127.0.0.1");
		props.put("server.tomcat.relaxed-query-chars", "|,[,],{,}");
		props.put("spring.main.allow-circular-references", "true");
		props.put("spring.main.allow-bean-definition-overriding", "false");
		props.put("spring.jmx.enabled", "false");

		SpringApplication app = new SpringApplication(SandboxApplication.class);
		app.setBannerMode(Banner.Mode.OFF);
		app.setLogStartupInfo(false);
		app.setDefaultProperties(props);
		app.run(args);

		double seconds = (System.nanoTime() - startedAt) / 1e9;
		LOG.info(String.format(
				"HAPI FHIR sandbox started at http://127.0.0.1:%s/fhir in %.1f s", port, seconds));
	}

	@Bean
	public JpaStorageSettings storageSettings() {
		JpaStorageSettings s = new JpaStorageSettings();
		// Any client-assigned id (also purely numeric); server-assigned ids are UUIDs so they
		// can never collide with client ids.
		s.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ANY);
		s.setResourceServerIdStrategy(JpaStorageSettings.IdStrategyEnum.UUID);
		// Every search runs fresh: no reuse of cached result sets between identical searches.
		s.setReuseCachedSearchResultsForMillis(null);
		s.setEnforceReferentialIntegrityOnWrite(true);
		s.setEnforceReferentialIntegrityOnDelete(true);
		s.setAutoCreatePlaceholderReferenceTargets(false);
		// Lets tests wipe the database ($expunge, conditional deletes that match many).
		s.setAllowMultipleDelete(true);
		s.setExpungeEnabled(true);
		s.setDeleteExpungeEnabled(true);
		// Bulk Data $export, executed by the batch2 framework.
		s.setEnableTaskBulkExportJobExecution(true);
		s.setEnableBulkExportJobReuse(false);
		s.setJobFastTrackingEnabled(true);
		s.setFilterParameterEnabled(true);
		if (SandboxFhirServer.bulkLoad()) {
			s.setMassIngestionMode(true);
			s.setResourceDbHistoryEnabled(false);
		}
		return s;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	@Bean
	public SubscriptionSettings subscriptionSettings() {
		// No subscription channel types: the subscription machinery is not loaded at all.
		return new SubscriptionSettings();
	}

	@Bean
	public INarrativeGenerator narrativeGenerator() {
		return new NullNarrativeGenerator();
	}

	/**
	 * Batch2 jobs (Bulk Data $export, delete-expunge) advance one step per maintenance pass,
	 * which HAPI runs once a minute. Every second makes a small export finish in a few seconds.
	 */
	@Bean
	public static BeanPostProcessor fastBatch2Maintenance() {
		return new BeanPostProcessor() {
			@Override
			public Object postProcessBeforeInitialization(Object bean, String beanName) {
				if (bean instanceof JobMaintenanceServiceImpl maintenance) {
					maintenance.setScheduledJobFrequencyMillis(BATCH2_MAINTENANCE_MILLIS);
				}
				return bean;
			}
		};
	}

	@Bean(destroyMethod = "close")
	public DataSource dataSource() {
		HikariDataSource ds = new HikariDataSource();
		ds.setJdbcUrl("jdbc:h2:mem:hapi_sandbox;DB_CLOSE_DELAY=-1");
		ds.setUsername("sa");
		ds.setPassword("");
		ds.setMaximumPoolSize(20);
		return ds;
	}

	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings,
			DataSource dataSource) {
		LocalContainerEntityManagerFactoryBean emf =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		emf.setPersistenceUnitName("HAPI_PU");
		emf.setDataSource(dataSource);

		Properties jpa = new Properties();
		jpa.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		jpa.put("hibernate.hbm2ddl.auto", "update");
		jpa.put("hibernate.archive.scanner", "org.hibernate.boot.archive.scan.internal.DisabledScanner");
		jpa.put("hibernate.format_sql", "false");
		jpa.put("hibernate.show_sql", "false");
		jpa.put("hibernate.jdbc.batch_size", "20");
		jpa.put("hibernate.cache.use_query_cache", "false");
		jpa.put("hibernate.cache.use_second_level_cache", "false");
		jpa.put("hibernate.cache.use_structured_entries", "false");
		jpa.put("hibernate.cache.use_minimal_puts", "false");
		jpa.put("hibernate.search.enabled", "false");
		emf.setJpaProperties(jpa);
		return emf;
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		JpaTransactionManager tm = new JpaTransactionManager();
		tm.setEntityManagerFactory(entityManagerFactory);
		return tm;
	}

	@Bean
	public ServletRegistrationBean<SandboxFhirServer> fhirServlet(SandboxFhirServer server) {
		ServletRegistrationBean<SandboxFhirServer> reg = new ServletRegistrationBean<>(server, "/fhir/*");
		reg.setName("fhir");
		reg.setLoadOnStartup(1);
		return reg;
	}
}
